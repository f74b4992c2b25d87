// watch_config (issue 14) against a config file written in place by a writer that is not done
// yet: the half-written file must never become the running configuration. The oracle is what
// a real request gets: a token without the admin scope on a route that requires it.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/support/proxy_env.h"

using namespace jwtgate::testing;

TEST_CASE("watch_config: a config file caught half-way through an in-place write is not applied") {
  Env env;  // /admin requires scope admin
  const std::string token = env.token(R"("scope":"read")");
  REQUIRE(env.get_with_token("/admin/x", token).status == 403);

  const std::string full = env.dir.read("jwtgate.yaml");
  // Cut where a writer that writes line by line (or block by block) may pause: the truncated
  // prefix is valid YAML, and keeps the /admin route but not its scope requirement.
  const auto cut = full.find("    require_scopes: [admin]\n");
  REQUIRE(cut != std::string::npos);

  // In place, as `cat > file`, an editor or a copy over a slow link writes it; docs say "written
  // in place" reloads.
  std::FILE* f = std::fopen(env.dir.file("jwtgate.yaml").c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(full.data(), 1, cut, f) == cut);
  REQUIRE(std::fflush(f) == 0);
  // The writer has not finished (the file is still open for writing): for 2 s (more than the
  // watch's settle time, less than its 5 s safety-net stat) nothing of it may apply.
  int admitted = 0;
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (env.get_with_token("/admin/x", token).status != 403) ++admitted;
  }
  REQUIRE(std::fwrite(full.data() + cut, 1, full.size() - cut, f) == full.size() - cut);
  REQUIRE(std::fclose(f) == 0);
  CHECK_MESSAGE(admitted == 0, "a token without scope admin reached /admin " << admitted
                                   << " times while the config file was half-written\n" << env.proxy->stdout_text());
  // The completed file is the same configuration: /admin still needs the scope.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(env.get_with_token("/admin/x", token).status == 403);
}
