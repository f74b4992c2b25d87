// The fuzz harness's own reading of an HTTP/1 byte stream: a strict llhttp instance (not the
// one jwtgate runs) that records every message whole, so what one side of the proxy sent can
// be compared with what the other side received.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace jwtgate::fuzz {

struct Field {
  std::string name;
  std::string value;
};

struct Message {
  int method = -1;     // requests: llhttp_method_t
  int status = 0;      // responses
  std::string reason;  // responses: the reason phrase as sent
  int http_major = 0, http_minor = 0;
  std::string url;
  std::vector<Field> headers;
  std::vector<Field> trailers;  // fields after a chunked body: not part of the head
  std::string body;    // de-chunked, as llhttp delivers it
  bool head_done = false;
  bool complete = false;
  bool keep_alive = false;
  bool chunked = false;
  bool has_length = false;
  bool needs_eof = false;  // framed by the connection's end
  bool upgrade = false;
  std::size_t end_offset = 0;  // stream offset just past the message (when complete)

  // Every value of the fields whose name equals `name` (ASCII case ignored).
  std::vector<std::string_view> all(std::string_view name) const;
  std::size_t count(std::string_view name) const { return all(name).size(); }
};

// The name as a CGI/WSGI/PHP gateway reads it: lower case, every byte that is not a letter or
// digit one separator. Written here afresh, not taken from the proxy, so it is a second opinion.
std::string cgi_name(std::string_view name);
bool iequal(std::string_view a, std::string_view b);

// Incremental, strict (no lenient flags) llhttp over one direction of one connection.
class StreamParser {
 public:
  // What on_headers_complete returns for a message (0 body follows, 1 no body); by default 0.
  using HeadPolicy = std::function<int(const Message&, std::size_t index)>;

  explicit StreamParser(llhttp_type_t type, HeadPolicy policy = {});
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  void feed(std::string_view data);
  // The stream ended: completes a message framed by the end of the connection.
  void finish();

  const std::vector<Message>& messages() const { return messages_; }
  std::vector<Message>& messages() { return messages_; }
  bool failed() const { return error_ != HPE_OK; }
  llhttp_errno_t error() const { return error_; }
  const char* error_reason() const { return reason_.c_str(); }
  // llhttp stopped at an Upgrade (or CONNECT) message: what follows is not HTTP.
  bool upgraded() const { return upgraded_; }
  std::size_t fed() const { return fed_; }
  std::size_t bytes_after_upgrade() const { return after_upgrade_; }
  bool finished() const { return finished_; }

 private:
  static int on_message_begin(llhttp_t* p);
  static int on_url(llhttp_t* p, const char* at, std::size_t len);
  static int on_status(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_field(llhttp_t* p, const char* at, std::size_t len);
  static int on_header_value(llhttp_t* p, const char* at, std::size_t len);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, std::size_t len);
  static int on_message_complete(llhttp_t* p);

  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  HeadPolicy policy_;
  std::vector<Message> messages_;
  bool in_value_ = false;
  llhttp_errno_t error_ = HPE_OK;
  std::string reason_;
  bool upgraded_ = false;
  bool finished_ = false;
  std::size_t fed_ = 0;
  std::size_t after_upgrade_ = 0;
};

// A client's byte stream read as jwtgate's llhttp (strict settings) reads it: message after
// message, going on after an Upgrade request that was refused. `asked` points into `parsers`.
struct ClientMessages {
  std::vector<std::unique_ptr<StreamParser>> parsers;
  std::vector<const Message*> asked;
};
ClientMessages read_client_messages(std::string_view stream);

// The bytes a client received, read as responses: an interim one has no body, nor has the
// answer to a HEAD in `asked` (matched by the order of final responses).
std::unique_ptr<StreamParser> read_client_responses(std::string_view received, bool eof,
                                                    const std::vector<const Message*>& asked);

}  // namespace jwtgate::fuzz
