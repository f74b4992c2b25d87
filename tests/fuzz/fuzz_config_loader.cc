// The config loader: YAML text -> Config, or errors that say what is wrong. Properties, beyond
// "no crash" (an exception leaking out of load_config is a crash here too):
//  - a Config comes back exactly when there is no error, and every diagnostic has a message;
//  - loading is deterministic (same diagnostics, same effective configuration);
//  - a loaded Config's /config JSON is valid JSON, has the documented top-level keys, and never
//    contains the value of a variable holding a secret (unless the file interpolates it itself).
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "config/config_json.h"
#include "config/loader.h"
#include "tests/fuzz/fuzz_support.h"

using namespace jwtgate;

namespace {

constexpr std::string_view kSecretValue = "fuzz-secret-value-0123456789abcdef-0123456789";

config::LoadOptions options() {
  config::LoadOptions o;
  // A fixed environment, so a result never depends on the machine; no secret files are read.
  o.env = [](const std::string& name) -> std::optional<std::string> {
    static const std::map<std::string, std::string> env = {
        {"ISSUER", "https://idp.example.com/"}, {"UPSTREAM", "http://127.0.0.1:8080"},
        {"HMAC_SECRET", std::string(kSecretValue)}, {"PORT", "8443"}, {"EMPTY", ""}};
    const auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  o.check_secrets = false;
  return o;
}

// The file's text with every ${NAME} the environment has replaced, as the loader would (one
// pass, no nesting; "$$" stays literal): whether it spells the secret out anywhere.
bool writes_secret(std::string_view yaml) {
  const auto env = options().env;
  std::string out;
  for (std::size_t i = 0; i < yaml.size(); ++i) {
    if (yaml[i] == '$' && i + 1 < yaml.size() && yaml[i + 1] == '$') {
      out += "$$";
      ++i;
      continue;
    }
    if (yaml[i] == '$' && i + 1 < yaml.size() && yaml[i + 1] == '{') {
      const std::size_t end = yaml.find('}', i + 2);
      if (end != std::string_view::npos) {
        if (const auto v = env(std::string(yaml.substr(i + 2, end - i - 2)))) {
          out += *v;
          i = end;
          continue;
        }
      }
    }
    out += yaml[i];
  }
  return out.find(kSecretValue) != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const config::LoadResult a = config::load_config(yaml, "fuzz.yaml", options());
  FUZZ_CHECK(a.config.has_value() == !a.diagnostics.has_errors());
  for (const config::Diagnostic& d : a.diagnostics.items()) {
    FUZZ_CHECK(!d.message.empty());
    FUZZ_CHECK(d.line >= 0 && d.column >= 0);
  }
  const std::string formatted = a.diagnostics.format();
  const config::LoadResult b = config::load_config(yaml, "fuzz.yaml", options());
  FUZZ_CHECK(b.diagnostics.format() == formatted && b.config.has_value() == a.config.has_value());
  if (!a.config) return 0;

  const std::string json = config::effective_config_json(*a.config);
  FUZZ_CHECK(json == config::effective_config_json(*b.config));
  // A secret read through hmac_secret_env never shows. A file that writes the value into a plain
  // value itself, literally or by ${HMAC_SECRET} (a JWKS host "${HMAC_SECRET}.com"), has put it
  // there: /config shows what the file says.
  if (!writes_secret(yaml)) FUZZ_CHECK(json.find(kSecretValue) == std::string::npos);
  simdjson::dom::parser parser;
  const simdjson::padded_string padded(json);
  simdjson::dom::object root;
  FUZZ_CHECK(!parser.parse(padded).get(root));
  for (const char* key : {"listen", "upstream", "providers", "routes", "limits", "log"}) {
    FUZZ_CHECK(!root[key].error());
  }
  FUZZ_CHECK(!a.config->routes.empty());
  for (const config::Route& r : a.config->routes) FUZZ_CHECK(!r.prefix.empty() && r.prefix[0] == '/');
  return 0;
}
