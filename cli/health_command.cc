// `jwtgate health`: one GET against the admin listener's /readyz, for images that have no curl
// (a Docker HEALTHCHECK in exec form, a Kubernetes exec probe). The exit code is the verdict;
// the one stderr line is what `docker inspect` and `kubectl describe` show an operator.
#include <curl/curl.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/duration.h"

namespace jwtgate::cli {
namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1:9901/readyz";
// A probe reads a status, not a document: what /readyz says fits easily, and an endpoint that
// streams forever must not keep the probe running until its timeout.
constexpr std::size_t kMaxBodyBytes = 4096;
constexpr std::size_t kMaxReasonBytes = 128;

struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlString {
  char* text = nullptr;
  ~CurlString() { curl_free(text); }
};

struct Exchange {
  std::size_t body_bytes = 0;
  bool body_cut = false;
  std::string reason;  // of the last status line (a 100 Continue may come first)
};

std::size_t on_body(char*, std::size_t, std::size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  x->body_bytes += n;
  if (x->body_bytes > kMaxBodyBytes) {
    x->body_cut = true;
    return 0;  // libcurl stops the transfer; the status is already known
  }
  return n;
}

std::size_t on_header(char* data, std::size_t, std::size_t n, void* user) {
  auto* x = static_cast<Exchange*>(user);
  std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) != 0) return n;
  // "HTTP/1.1 503 Service Unavailable\r\n": the text after the code.
  const auto code = line.find(' ');
  const auto reason = code == std::string_view::npos ? std::string_view::npos : line.find(' ', code + 1);
  x->reason.clear();
  if (reason == std::string_view::npos) return n;
  line.remove_prefix(reason + 1);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  for (char c : line.substr(0, kMaxReasonBytes)) {
    // An endpoint's text reaches a terminal and a log line: printable ASCII only.
    x->reason.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  return n;
}

// What went wrong, for the one stderr line: short, lower case, the way an operator says it.
std::string describe_failure(CURL* easy, CURLcode code, const char* error_buffer, const std::string& timeout_text) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return "timed out after " + timeout_text;
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot resolve the host name";
    case CURLE_COULDNT_CONNECT: {
      long os_errno = 0;
      curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
      if (os_errno == ECONNREFUSED) return "connection refused";
      if (os_errno != 0) return std::string("cannot connect: ") + std::strerror(static_cast<int>(os_errno));
      return "cannot connect";
    }
    case CURLE_GOT_NOTHING:
      return "closed the connection without answering";
    default:
      return error_buffer[0] != '\0' ? std::string(error_buffer) : std::string(curl_easy_strerror(code));
  }
}

int usage(const std::string& error) {
  std::cerr << "usage: jwtgate health [--url " << kDefaultUrl << "] [--timeout 2s]\n"
               "  one GET; exits 0 when it answers 2xx, 1 otherwise (the reason on stderr), 2 on bad usage\n";
  if (!error.empty()) std::cerr << "error: " << error << "\n";
  return kExitUsage;
}

}  // namespace

int health_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"url", "timeout"});
  if (!args.ok()) return usage(args.error());
  if (!args.positional().empty()) return usage("unexpected argument '" + args.positional().front() + "'");
  const std::string url = args.get("url", kDefaultUrl);
  const std::string timeout_text = args.get("timeout", "2s");
  const auto timeout = config::parse_duration(timeout_text);
  if (!timeout || timeout->count() == 0) {
    return usage("--timeout: expected a duration longer than 0 such as 500ms or 2s, found '" + timeout_text + "'");
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  // The scheme is read by libcurl's own parser, the one the transfer uses: a URL it would read
  // differently from a hand-written check cannot slip through.
  std::unique_ptr<CURLU, UrlDeleter> parsed(curl_url());
  if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return usage("--url: expected an http:// or https:// URL, found '" + url + "'");
  }
  CurlString scheme;
  if (curl_url_get(parsed.get(), CURLUPART_SCHEME, &scheme.text, 0) != CURLUE_OK ||
      (std::strcmp(scheme.text, "http") != 0 && std::strcmp(scheme.text, "https") != 0)) {
    return usage("--url: expected an http:// or https:// URL, found '" + url + "'");
  }

  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) {
    std::cerr << "jwtgate health: cannot set up the request\n";
    return kExitInvalid;
  }
  CURL* e = easy.get();
  Exchange exchange;
  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(e, CURLOPT_CURLU, parsed.get());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  // A container's http_proxy/HTTPS_PROXY is for its traffic out, never for a probe of itself.
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  // A redirect is an answer, and not a 2xx one: a probe that followed it would report on
  // another endpoint.
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout->count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "jwtgate-health");
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &exchange);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &exchange);
  const CURLcode code = curl_easy_perform(e);

  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  const bool answered = code == CURLE_OK || (code == CURLE_WRITE_ERROR && exchange.body_cut && status != 0);
  if (!answered) {
    std::cerr << "jwtgate health: " << url << " " << describe_failure(e, code, error_buffer, timeout_text) << "\n";
    return kExitInvalid;
  }
  const std::string answer = std::to_string(status) + (exchange.reason.empty() ? "" : " " + exchange.reason);
  if (status < 200 || status > 299) {
    std::cerr << "jwtgate health: " << url << " answered " << answer << "\n";
    return kExitInvalid;
  }
  std::cout << "jwtgate health: " << url << " answered " << answer << "\n";
  return kExitOk;
}

}  // namespace jwtgate::cli
