// watch_config (issue 14) against common ways a config file is replaced, found by the attack
// review of ConfigFileWatch: a half-written file must never apply, and a complete new version
// must. The oracle is what a real request gets.
#include <doctest/doctest.h>

#include <csignal>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/support/proxy_env.h"

using namespace jwtgate::testing;
namespace fs = std::filesystem;

namespace {

// The config cut where a writer may pause: valid YAML that keeps /admin but not its scope.
std::string weaker_prefix(const std::string& full) {
  const auto cut = full.find("    require_scopes: [admin]\n");
  REQUIRE(cut != std::string::npos);
  return full.substr(0, cut);
}

// Holds the writer open, not done, for 2 s; counts the requests a token without scope admin
// got through to /admin meanwhile; then finishes the file.
int admitted_while_open(Env& env, std::FILE* f, const std::string& full, std::size_t written) {
  int admitted = 0;
  const std::string token = env.token(R"("scope":"read")");
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (env.get_with_token("/admin/x", token).status != 403) ++admitted;
  }
  REQUIRE(std::fwrite(full.data() + written, 1, full.size() - written, f) == full.size() - written);
  REQUIRE(std::fclose(f) == 0);
  return admitted;
}

// Restarts the proxy of `env` (same ports) on another config path.
void restart_on(Env& env, const std::string& config_path) {
  env.proxy->signal(SIGTERM);
  REQUIRE(env.proxy->wait_exit(10) == 0);
  env.proxy = std::make_unique<Child>(std::vector<std::string>{JWTGATE_BINARY, "--config", config_path}, env.dir.path(), "proxy2");
  REQUIRE_MESSAGE(wait_for_port(env.port), env.proxy->stderr_text());
}

std::string with_open_route(const std::string& full) {
  const auto at = full.find("routes:\n");
  REQUIRE(at != std::string::npos);
  std::string next = full;
  next.insert(at + 8, "  - prefix: /new\n    auth: none\n");
  return next;
}

}  // namespace

TEST_CASE("watch_config: a file truncated, then rewritten by a writer not done yet, is not applied") {
  Env env;
  const std::string token = env.token(R"("scope":"read")");
  REQUIRE(env.get_with_token("/admin/x", token).status == 403);
  const std::string full = env.dir.read("jwtgate.yaml");
  const std::string prefix = weaker_prefix(full);
  // `: > f` or `truncate -s 0 f`, then `slow-generator >> f`: the truncation is a close after
  // writing; the writer that follows has the file open when the watch looks.
  std::FILE* t = std::fopen(env.dir.file("jwtgate.yaml").c_str(), "w");
  REQUIRE(t != nullptr);
  REQUIRE(std::fclose(t) == 0);
  std::FILE* f = std::fopen(env.dir.file("jwtgate.yaml").c_str(), "a");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(prefix.data(), 1, prefix.size(), f) == prefix.size());
  REQUIRE(std::fflush(f) == 0);
  const int admitted = admitted_while_open(env, f, full, prefix.size());
  CHECK_MESSAGE(admitted == 0, "a token without scope admin reached /admin " << admitted << " times\n"
                                   << env.proxy->stdout_text());
}

TEST_CASE("watch_config: the old file moved aside, the new one written in its place, is not applied half-way") {
  Env env;
  const std::string token = env.token(R"("scope":"read")");
  REQUIRE(env.get_with_token("/admin/x", token).status == 403);
  const std::string full = env.dir.read("jwtgate.yaml");
  const std::string prefix = weaker_prefix(full);
  // `mv jwtgate.yaml jwtgate.yaml.bak && generate > jwtgate.yaml`: the rename lands in the
  // watched directory and the path's inode changes, though nothing was renamed onto the path.
  fs::rename(env.dir.file("jwtgate.yaml"), env.dir.file("jwtgate.yaml.bak"));
  std::FILE* f = std::fopen(env.dir.file("jwtgate.yaml").c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(prefix.data(), 1, prefix.size(), f) == prefix.size());
  REQUIRE(std::fflush(f) == 0);
  const int admitted = admitted_while_open(env, f, full, prefix.size());
  CHECK_MESSAGE(admitted == 0, "a token without scope admin reached /admin " << admitted << " times\n"
                                   << env.proxy->stdout_text());
}

TEST_CASE("watch_config: a rename of another file in the directory does not apply a config being rewritten") {
  Env env;
  const std::string token = env.token(R"("scope":"read")");
  REQUIRE(env.get_with_token("/admin/x", token).status == 403);
  const std::string full = env.dir.read("jwtgate.yaml");
  const std::string prefix = weaker_prefix(full);
  // A backup kept (a hard link, as `cp -l` or `ln` make), rm, then a slow re-create; meanwhile
  // something else in the directory is saved by rename (`sed -i` on another file, an editor's
  // safe write). The backup keeps the old inode, so the new file has another.
  fs::create_hard_link(env.dir.file("jwtgate.yaml"), env.dir.file("jwtgate.yaml.orig"));
  fs::remove(env.dir.file("jwtgate.yaml"));
  std::FILE* f = std::fopen(env.dir.file("jwtgate.yaml").c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(std::fwrite(prefix.data(), 1, prefix.size(), f) == prefix.size());
  REQUIRE(std::fflush(f) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  env.dir.write("notes.tmp", "unrelated\n");
  fs::rename(env.dir.file("notes.tmp"), env.dir.file("notes"));
  const int admitted = admitted_while_open(env, f, full, prefix.size());
  CHECK_MESSAGE(admitted == 0, "a token without scope admin reached /admin " << admitted << " times\n"
                                   << env.proxy->stdout_text());
}

TEST_CASE("watch_config: a release-directory symlink swap (current -> releases/v2) reloads") {
  Env env;
  const std::string full = env.dir.read("jwtgate.yaml");
  fs::create_directories(env.dir.file("releases/v1"));
  fs::create_directories(env.dir.file("releases/v2"));
  env.dir.write("releases/v1/jwtgate.yaml", full);
  fs::create_directory_symlink("releases/v1", env.dir.file("current"));
  restart_on(env, env.dir.file("current/jwtgate.yaml"));
  REQUIRE(env.get("/new/x").status == 401);
  // Capistrano-style deploy: the new release is complete before `ln -sfn` + rename swaps it in.
  env.dir.write("releases/v2/jwtgate.yaml", with_open_route(full));
  fs::create_directory_symlink("releases/v2", env.dir.file("current.tmp"));
  fs::rename(env.dir.file("current.tmp"), env.dir.file("current"));
  CHECK_MESSAGE(eventually([&] { return env.get("/new/x").status == 200; }, 5), env.proxy->stdout_text());
}

TEST_CASE("watch_config: a symlink to a ConfigMap mounted in another directory reloads on its ..data swap") {
  Env env;
  const std::string full = env.dir.read("jwtgate.yaml");
  // /etc/jwtgate/jwtgate.yaml -> /config/jwtgate.yaml, where /config is the ConfigMap volume.
  fs::create_directories(env.dir.file("config/..v1"));
  fs::create_directories(env.dir.file("etc"));
  env.dir.write("config/..v1/jwtgate.yaml", full);
  fs::create_directory_symlink("..v1", env.dir.file("config/..data"));
  fs::create_symlink("..data/jwtgate.yaml", env.dir.file("config/jwtgate.yaml"));
  fs::create_symlink(env.dir.file("config/jwtgate.yaml"), env.dir.file("etc/jwtgate.yaml"));
  restart_on(env, env.dir.file("etc/jwtgate.yaml"));
  REQUIRE(env.get("/new/x").status == 401);
  // The kubelet's update: a new timestamped directory, ..data_tmp -> it, renamed over ..data,
  // the old directory removed.
  fs::create_directories(env.dir.file("config/..v2"));
  env.dir.write("config/..v2/jwtgate.yaml", with_open_route(full));
  fs::create_directory_symlink("..v2", env.dir.file("config/..data_tmp"));
  fs::rename(env.dir.file("config/..data_tmp"), env.dir.file("config/..data"));
  fs::remove_all(env.dir.file("config/..v1"));
  CHECK_MESSAGE(eventually([&] { return env.get("/new/x").status == 200; }, 5), env.proxy->stdout_text());
}

TEST_CASE("watch_config: a file written in place under another name of the same inode reloads (a bind-mounted file)") {
  Env env;
  const std::string full = env.dir.read("jwtgate.yaml");
  // `docker run -v ./jwtgate.yaml:/etc/jwtgate/jwtgate.yaml`: the host writes the file in place
  // (the only update a single-file bind mount can see) through its own directory, so the
  // container's directory watch hears nothing. A hard link has the same inotify behaviour.
  fs::create_directories(env.dir.file("host"));
  fs::create_directories(env.dir.file("etc"));
  env.dir.write("host/jwtgate.yaml", full);
  fs::create_hard_link(env.dir.file("host/jwtgate.yaml"), env.dir.file("etc/jwtgate.yaml"));
  restart_on(env, env.dir.file("etc/jwtgate.yaml"));
  REQUIRE(env.get("/new/x").status == 401);
  std::FILE* f = std::fopen(env.dir.file("host/jwtgate.yaml").c_str(), "w");  // in place: same inode
  REQUIRE(f != nullptr);
  const std::string next = with_open_route(full);
  REQUIRE(std::fwrite(next.data(), 1, next.size(), f) == next.size());
  REQUIRE(std::fclose(f) == 0);
  CHECK_MESSAGE(eventually([&] { return env.get("/new/x").status == 200; }, 5), env.proxy->stdout_text());
}

TEST_CASE("watch_config: SIGTERM while a change is settling stops cleanly") {
  Env env;
  const std::string full = env.dir.read("jwtgate.yaml");
  for (int i = 0; i < 5; ++i) env.dir.write("jwtgate.yaml", full + "# " + std::to_string(i) + "\n");
  env.proxy->signal(SIGTERM);
  CHECK(env.proxy->wait_exit(10) == 0);
}
