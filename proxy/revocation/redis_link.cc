#include "proxy/revocation/redis_link.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <cstdlib>

#include "config/bounded_file.h"
#include "config/secret_file.h"

namespace jwtgate::proxy {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string reply_text(const redisReply* r) {
  if (!r) return "no reply";
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len).substr(0, 200);
  return "unexpected reply";
}

}  // namespace

std::shared_ptr<SSL_CTX> make_redis_tls(const std::string& ca_file, std::string& error) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) {
    error = "cannot create a TLS context";
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  const int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                 : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  if (ok != 1) {
    error = ca_file.empty() ? "cannot load the system's CA certificates" : ca_file + ": cannot be read as PEM CA certificates";
    return nullptr;
  }
  return ctx;
}

SSL* make_redis_ssl(SSL_CTX* ctx, const std::string& host) {
  SSL* ssl = SSL_new(ctx);
  if (!ssl) return nullptr;
  in6_addr a6;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
  return ssl;
}

bool read_redis_password(const config::RevocationRedis& redis, std::string& password, std::string& error) {
  if (!redis.password_file.empty()) {
    config::SecretFile f = config::read_secret_file(redis.password_file);
    if (!f.error.empty()) {
      error = f.error;
      return false;
    }
    password = std::string(f.secret.view());
  } else if (!redis.password_env.empty()) {
    const char* v = std::getenv(redis.password_env.c_str());
    if (!v) {
      error = "environment variable " + redis.password_env + " is not set";
      return false;
    }
    password = v;
  }
  return true;
}

RedisLink::RedisLink(uv_loop_t* loop, RedisSettings settings, std::function<void(std::string why)> down)
    : loop_(loop), settings_(std::move(settings)), down_(std::move(down)) {}

RedisLink::~RedisLink() { close(); }

bool RedisLink::start(std::string& error) {
  redisOptions opt{};
  const std::string& address = settings_.address.empty() ? settings_.url.host : settings_.address;
  REDIS_OPTIONS_SET_TCP(&opt, address.c_str(), settings_.url.port);
  const timeval connect = to_timeval(settings_.connect_timeout);
  const timeval command_tv = to_timeval(settings_.command_timeout);
  opt.connect_timeout = &connect;
  if (settings_.command_timeout.count() > 0) opt.command_timeout = &command_tv;
  ac_ = redisAsyncConnectWithOptions(&opt);
  if (!ac_) {
    error = "cannot allocate a Redis connection";
    return false;
  }
  if (ac_->err) {
    error = ac_->errstr;
    redisAsyncFree(ac_);
    ac_ = nullptr;
    return false;
  }
  ac_->data = this;
  if (settings_.url.tls) {
    SSL* ssl = make_redis_ssl(settings_.tls.get(), settings_.url.host);
    if (!ssl) {
      error = "cannot create a TLS session";
      close();
      return false;
    }
    if (redisInitiateSSL(&ac_->c, ssl) != REDIS_OK) {  // takes ssl only when it succeeds
      SSL_free(ssl);
      error = ac_->c.errstr[0] ? ac_->c.errstr : "cannot start TLS";
      close();
      return false;
    }
  }
  if (redisLibuvAttach(ac_, loop_) != REDIS_OK) {
    error = "cannot attach Redis to the event loop";
    close();
    return false;
  }
  redisAsyncSetConnectCallbackNC(ac_, on_connect);
  redisAsyncSetDisconnectCallback(ac_, on_disconnect);
  const std::string user = !settings_.username.empty() ? settings_.username : settings_.url.username;
  auto check = [this](const char* what) {
    return [this, what](const redisReply* r) {
      if (r && r->type != REDIS_REPLY_ERROR) return;
      fail(std::string(what) + " refused: " + reply_text(r));
    };
  };
  if (!settings_.password.empty()) {
    if (user.empty()) command({"AUTH", settings_.password}, check("AUTH"));
    else command({"AUTH", user, settings_.password}, check("AUTH"));
  }
  if (settings_.url.db != 0) command({"SELECT", std::to_string(settings_.url.db)}, check("SELECT"));
  return true;
}

void RedisLink::command(const std::vector<std::string>& argv, std::function<void(const redisReply*)> done) {
  if (!ac_ || closing_ || failed_) return;
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto fn = std::make_unique<std::function<void(const redisReply*)>>(std::move(done));
  if (redisAsyncCommandArgv(ac_, on_reply, fn.get(), static_cast<int>(args.size()), args.data(), lens.data()) == REDIS_OK) {
    fn.release();  // on_reply takes it back
  } else {
    fail("cannot send a command");
  }
}

void RedisLink::subscribe(const std::string& channel, std::function<void()> ready,
                          std::function<void(std::string_view)> message) {
  if (!ac_ || closing_ || failed_) return;
  subscribed_ = std::move(ready);
  message_ = std::move(message);
  const char* args[] = {"SUBSCRIBE", channel.c_str()};
  const std::size_t lens[] = {9, channel.size()};
  if (redisAsyncCommandArgv(ac_, on_message, nullptr, 2, args, lens) != REDIS_OK) fail("cannot subscribe");
}

void RedisLink::close() {
  closing_ = true;
  if (redisAsyncContext* ac = ac_) {
    ac_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);  // pending callbacks run with no reply, and see closing_
  }
}

void RedisLink::fail(std::string why) {
  if (failed_ || closing_) return;
  failed_ = true;
  connected_ = false;
  // Later callbacks (this context's teardown) must not reach the owner again.
  auto down = std::move(down_);
  down_ = nullptr;
  if (ac_) redisAsyncDisconnect(ac_);  // hiredis frees it once its callbacks have run
  if (down) down(std::move(why));
}

void RedisLink::on_connect(redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (!self) return;
  if (status != REDIS_OK) {
    self->ac_ = nullptr;  // hiredis frees a context whose connect failed
    self->fail(std::string("cannot connect: ") + (ac->errstr[0] ? ac->errstr : "error"));
    return;
  }
  self->connected_ = true;
  // The subscription is idle by nature: the kernel's keepalive at least finds a dead peer.
  redisEnableKeepAlive(&ac->c);
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (!self) return;
  self->ac_ = nullptr;  // freed by hiredis when this returns
  self->fail(status == REDIS_OK ? std::string("the server closed the connection")
                                : std::string("connection lost: ") + (ac->errstr[0] ? ac->errstr : "error"));
}

void RedisLink::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<std::function<void(const redisReply*)>> fn(static_cast<std::function<void(const redisReply*)>*>(privdata));
  auto* self = static_cast<RedisLink*>(ac->data);
  if (!self || self->closing_ || !fn || !*fn) return;
  (*fn)(static_cast<const redisReply*>(reply));
}

void RedisLink::on_message(redisAsyncContext* ac, void* reply, void* /*privdata*/) {
  auto* self = static_cast<RedisLink*>(ac->data);
  auto* r = static_cast<const redisReply*>(reply);
  if (!self || self->closing_ || !r) return;
  if (r->type == REDIS_REPLY_ERROR) {
    self->fail("SUBSCRIBE refused: " + reply_text(r));
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
  const std::string_view kind(r->element[0]->str, r->element[0]->len);
  if (kind == "subscribe") {
    if (self->subscribed_) self->subscribed_();
  } else if (kind == "message" && r->element[2]->type == REDIS_REPLY_STRING) {
    if (self->message_) self->message_(std::string_view(r->element[2]->str, r->element[2]->len));
  }
}

}  // namespace jwtgate::proxy
