// What both HTTP/2 codecs (the client's, proxy/http/h2_session; the upstream's,
// proxy/http/h2_upstream_session) share: nghttp2 objects owned RAII, and header lists in
// nghttp2's shape.
#pragma once

#define NGHTTP2_NO_SSIZE_T
#include <nghttp2/nghttp2.h>

#include <memory>
#include <string_view>
#include <vector>

#include "proxy/http/http_head.h"

// nghttp2_session_mem_recv2/mem_send2 and the CONTINUATION limit (CVE-2024-28182) came in 1.61.
static_assert(NGHTTP2_VERSION_NUM >= 0x013d00, "jwtgate needs nghttp2 1.61 or later: run scripts/install-deps.sh");

namespace jwtgate::proxy {

struct Nghttp2SessionDelete {
  void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};
using Nghttp2Session = std::unique_ptr<nghttp2_session, Nghttp2SessionDelete>;

struct Nghttp2CallbacksDelete {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
using Nghttp2Callbacks = std::unique_ptr<nghttp2_session_callbacks, Nghttp2CallbacksDelete>;

struct Nghttp2OptionDelete {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};
using Nghttp2Option = std::unique_ptr<nghttp2_option, Nghttp2OptionDelete>;

// Views of `fields` for nghttp2_submit_*, which copies them: valid while `fields` is.
std::vector<nghttp2_nv> to_nv(const std::vector<HeaderField>& fields);

inline std::string_view as_view(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

// Response fields an HTTP/1 upstream sent that HTTP/2 forbids or that describe only that hop
// (RFC 9113 section 8.2.2): Connection and what it lists, Keep-Alive, Transfer-Encoding, and so
// on. The rest, names in lower case.
std::vector<HeaderField> h2_response_fields(int status, const HeaderList& http1_fields);

}  // namespace jwtgate::proxy
