// `jwtgate revoke`: writes one revocation where sidecars read them, into Redis (stored under its
// key with a TTL to its end, and published so every sidecar applies it at once) or appended to
// a revocation file. Blocking is fine here: this is a command, not the proxy.
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <hiredis/hiredis_ssl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "config/duration.h"
#include "config/redis_url.h"
#include "core/revocation.h"
#include "proxy/revocation/redis_link.h"
#include "proxy/revocation/redis_revocation_source.h"

namespace jwtgate::cli {
namespace {

constexpr const char* kUsage =
    "usage: jwtgate revoke (--redis URL | --file PATH) SELECTOR\n"
    "  SELECTOR: --jti J --exp T                 the one token with jti J (T: its exp)\n"
    "          | --iss I --sub S [--before T]    every token of I/S issued before T (default: now)\n"
    "          | --iss I --sid X                 every token of I carrying sid X (an OIDC session)\n"
    "  --ttl D          how long a sub or sid revocation lasts (default 24h; at least the longest\n"
    "                   token lifetime)\n"
    "  Redis: [--key-prefix jwtgate:revoked:] [--channel jwtgate:revocations] [--user U]\n"
    "         [--password-file F | --password-env VAR] [--ca-file F] [--timeout 5s]\n"
    "  T: seconds since the epoch. Prints the entry written, as JSON.\n";


int usage(const std::string& why) {
  std::cerr << "jwtgate revoke: " << why << "\n\n" << kUsage;
  return kExitUsage;
}

bool parse_time(const std::string& text, std::int64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= 0 && out < (std::int64_t{1} << 37);
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

ReplyPtr run(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data())));
}

std::string describe(redisContext* c, const redisReply* r) {
  if (!r) return c->errstr[0] ? c->errstr : "no reply";
  if (r->type == REDIS_REPLY_ERROR) return std::string(r->str, r->len).substr(0, 200);
  return "unexpected reply";
}

int write_redis(const Args& args, const core::RevocationEntry& entry) {
  config::RevocationRedis redis;
  std::string why;
  if (!config::parse_redis_url(args.get("redis"), redis.url, why)) return usage("--redis: the Redis URL " + why);
  if (args.has("password-file") && args.has("password-env")) return usage("give --password-file or --password-env, not both");
  redis.password_file = args.get("password-file");
  redis.password_env = args.get("password-env");
  redis.key_prefix = args.get("key-prefix", redis.key_prefix);
  redis.channel = args.get("channel", redis.channel);
  const auto timeout = config::parse_duration(args.get("timeout", "5s"));
  if (!timeout || timeout->count() <= 0) return usage("--timeout: expected a duration such as 5s");
  std::string password;
  if (!proxy::read_redis_password(redis, password, why)) {
    std::cerr << "jwtgate revoke: " << why << "\n";
    return kExitUsage;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout->count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout->count() % 1000) * 1000);
  redisOptions opt{};
  REDIS_OPTIONS_SET_TCP(&opt, redis.url.host.c_str(), redis.url.port);
  opt.connect_timeout = &tv;
  opt.command_timeout = &tv;
  std::unique_ptr<redisContext, ContextDeleter> c(redisConnectWithOptions(&opt));
  if (!c || c->err) {
    std::cerr << "jwtgate revoke: cannot connect to " << redis.url.host << ":" << redis.url.port << ": "
              << (c ? c->errstr : "out of memory") << "\n";
    return kExitInvalid;
  }
  std::shared_ptr<SSL_CTX> tls;
  if (redis.url.tls) {
    tls = proxy::make_redis_tls(args.get("ca-file"), why);
    if (!tls) {
      std::cerr << "jwtgate revoke: " << why << "\n";
      return kExitUsage;
    }
    SSL* ssl = proxy::make_redis_ssl(tls.get(), redis.url.host);
    if (!ssl) {
      std::cerr << "jwtgate revoke: cannot create a TLS session\n";
      return kExitInvalid;
    }
    if (redisInitiateSSL(c.get(), ssl) != REDIS_OK) {  // takes ssl only when it succeeds
      SSL_free(ssl);
      std::cerr << "jwtgate revoke: TLS with " << redis.url.host << " failed: " << c->errstr << "\n";
      return kExitInvalid;
    }
  }
  const std::string user = args.has("user") ? args.get("user") : redis.url.username;
  if (!password.empty()) {
    ReplyPtr r = user.empty() ? run(c.get(), {"AUTH", password}) : run(c.get(), {"AUTH", user, password});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::cerr << "jwtgate revoke: AUTH refused: " << describe(c.get(), r.get()) << "\n";
      return kExitInvalid;
    }
  }
  if (redis.url.db != 0) {
    ReplyPtr r = run(c.get(), {"SELECT", std::to_string(redis.url.db)});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      std::cerr << "jwtgate revoke: SELECT refused: " << describe(c.get(), r.get()) << "\n";
      return kExitInvalid;
    }
  }
  const std::vector<std::string> set = proxy::RedisRevocationSource::store_command(redis.key_prefix, entry);
  const std::string& value = set[2];
  ReplyPtr stored = run(c.get(), set);
  if (!stored || stored->type == REDIS_REPLY_ERROR) {
    std::cerr << "jwtgate revoke: SET refused: " << describe(c.get(), stored.get()) << "\n";
    return kExitInvalid;
  }
  ReplyPtr published = run(c.get(), {"PUBLISH", redis.channel, value});
  if (!published || published->type != REDIS_REPLY_INTEGER) {
    std::cerr << "jwtgate revoke: stored, but PUBLISH failed (sidecars apply it at their next resync): "
              << describe(c.get(), published.get()) << "\n";
    return kExitInvalid;
  }
  std::cout << value << "\n";
  std::cerr << "jwtgate revoke: stored in Redis and published to " << published->integer << " subscriber(s)\n";
  return kExitOk;
}

int append_file(const std::string& path, const core::RevocationEntry& entry) {
  const std::string line = core::revocation_entry_json(entry) + "\n";
  // O_APPEND: one write of one line, so a watcher never reads half an entry from this writer.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) {
    std::cerr << "jwtgate revoke: " << path << ": " << std::strerror(errno) << "\n";
    return kExitInvalid;
  }
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size())) {
    std::cerr << "jwtgate revoke: " << path << ": " << (n < 0 ? std::strerror(err) : "short write") << "\n";
    return kExitInvalid;
  }
  std::cout << line;
  return kExitOk;
}

}  // namespace

int revoke_command(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"redis", "file", "jti", "exp", "iss", "sub", "sid", "before", "ttl", "key-prefix", "channel", "user",
             "password-file", "password-env", "ca-file", "timeout"},
            {"help"});
  if (!args.ok()) return usage(args.error());
  if (args.has("help")) {
    std::cout << kUsage;
    return kExitOk;
  }
  if (!args.positional().empty()) return usage("unexpected argument " + args.positional().front());
  if (args.has("redis") == args.has("file")) return usage("give --redis URL or --file PATH (one of them)");
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
  core::RevocationEntry e;
  const int selectors = static_cast<int>(args.has("jti")) + static_cast<int>(args.has("sub")) + static_cast<int>(args.has("sid"));
  if (selectors != 1) return usage("give exactly one of --jti, --sub (with --iss) or --sid (with --iss)");
  if (args.has("jti")) {
    if (args.has("iss") || args.has("before") || args.has("ttl")) return usage("--jti takes --exp only");
    if (!args.has("exp")) return usage("--jti needs --exp, the token's expiry (seconds since the epoch)");
    std::int64_t exp = 0;
    if (!parse_time(args.get("exp"), exp)) return usage("--exp: expected seconds since the epoch");
    // Sidecars accept a token until exp plus their clock skew (at most 5m with revocation).
    if (exp + 300 <= now) return usage("--exp is more than 5m in the past: that token is refused as expired already");
    e.kind = core::RevocationKind::jti;
    e.value = args.get("jti");
    e.exp = exp;
  } else {
    if (!args.has("iss")) return usage(args.has("sub") ? "--sub needs --iss" : "--sid needs --iss");
    if (args.has("exp")) return usage("--exp belongs to --jti; --ttl says how long this revocation lasts");
    const auto ttl = config::parse_duration(args.get("ttl", "24h"));
    if (!ttl || ttl->count() < 1000) return usage("--ttl: expected a duration of at least 1s, such as 24h");
    e.iss = args.get("iss");
    e.exp = now + std::chrono::duration_cast<std::chrono::seconds>(*ttl).count();
    if (args.has("sub")) {
      e.kind = core::RevocationKind::subject;
      e.value = args.get("sub");
      e.before = now + 1;  // the tokens of this very second too
      if (args.has("before") && !parse_time(args.get("before"), e.before)) {
        return usage("--before: expected seconds since the epoch");
      }
    } else {
      if (args.has("before")) return usage("--before belongs to --sub");
      e.kind = core::RevocationKind::session;
      e.value = args.get("sid");
    }
  }
  // The same rules as every reader: what is written here is what the sidecars accept.
  auto checked = core::parse_revocation_entry(core::revocation_entry_json(e));
  if (!checked) return usage(checked.status().detail());
  return args.has("redis") ? write_redis(args, e) : append_file(args.get("file"), e);
}

}  // namespace jwtgate::cli
