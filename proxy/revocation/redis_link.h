// One asynchronous connection to Redis (hiredis on the control loop through its libuv adapter):
// TLS with the server's name verified, AUTH and SELECT before anything else, commands whose
// replies come back as callbacks, or one SUBSCRIBE. Either way, any failure (connect, AUTH, a
// dropped or silent connection) ends the link once, through `down`; the owner makes a new one.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

struct redisAsyncContext;
struct redisReply;

namespace jwtgate::proxy {

struct RedisSettings {
  config::RedisUrl url;
  // The address to connect to, resolved off the loop from url.host (hiredis would resolve a
  // name with a blocking getaddrinfo); empty: url.host, a literal address. TLS still checks the
  // certificate against url.host.
  std::string address;
  std::string username;  // empty: the URL's, else none
  std::string password;  // empty: no AUTH
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};  // commands only; a subscription may be idle
  std::shared_ptr<SSL_CTX> tls;  // rediss://; built by make_redis_tls
};

// The TLS context for rediss://: peer verification against `ca_file` (empty: the system's CAs).
// nullptr with `error` set when the CA file cannot be used.
std::shared_ptr<SSL_CTX> make_redis_tls(const std::string& ca_file, std::string& error);

// A TLS session for a connection to `host`: hiredis sends SNI but checks no name, so the
// certificate is made to name the host (or IP address) asked for. nullptr when OpenSSL fails.
SSL* make_redis_ssl(SSL_CTX* ctx, const std::string& host);

// The password from password_file or password_env (trailing line end removed); false with
// `error` when the file cannot be read or the variable is unset.
bool read_redis_password(const config::RevocationRedis& redis, std::string& password, std::string& error);

class RedisLink {
 public:
  // `down` runs once, on the loop, when the link fails; never from inside close().
  RedisLink(uv_loop_t* loop, RedisSettings settings, std::function<void(std::string why)> down);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  bool start(std::string& error);  // connects; false when hiredis cannot even begin
  // `done` gets the reply, or nullptr when the link ended first. Not after close().
  void command(const std::vector<std::string>& argv, std::function<void(const redisReply*)> done);
  // One per link. `ready` when Redis confirms; `message` per published message.
  void subscribe(const std::string& channel, std::function<void()> ready, std::function<void(std::string_view)> message);
  // Ends the link without calling `down`; pending `done`s get nullptr.
  void close();
  bool up() const { return ac_ != nullptr && connected_; }

 private:
  static void on_connect(redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_message(redisAsyncContext* ac, void* reply, void* privdata);
  void fail(std::string why);

  uv_loop_t* loop_;
  RedisSettings settings_;
  std::function<void(std::string)> down_;
  redisAsyncContext* ac_ = nullptr;  // owned by hiredis once connecting; freed by close()
  bool connected_ = false;
  bool failed_ = false;
  bool closing_ = false;
  std::function<void()> subscribed_;
  std::function<void(std::string_view)> message_;
};

}  // namespace jwtgate::proxy
