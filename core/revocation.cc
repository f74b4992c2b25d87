#include "core/revocation.h"

#include <openssl/rand.h>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/json_object.h"
#include "core/json_writer.h"
#include "core/signature.h"

namespace jwtgate::core {
namespace {

// jti records are kept this long past their token's exp: the check extends them by the token's
// provider's clock skew (check-config warns above 5m).
constexpr std::int64_t kExpiryMargin = 600;
// Times beyond this are not times (year 5138); they would overflow the skew arithmetic.
constexpr std::int64_t kMaxTime = std::int64_t{1} << 37;

Status bad(std::string detail) { return {Reason::malformed, std::move(detail)}; }

Status read_time(simdjson::dom::element e, std::string_view name, std::int64_t& out) {
  std::int64_t i;
  std::uint64_t u;
  double d;
  if (!e.get_int64().get(i)) {
    out = i;
  } else if (!e.get_uint64().get(u)) {
    return bad(quoted_detail(name, "is out of range"));
  } else if (!e.get_double().get(d) && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    out = static_cast<std::int64_t>(d);
  } else {
    return bad(quoted_detail(name, "must be a whole number of seconds since the epoch"));
  }
  if (out < 0 || out > kMaxTime) return bad(quoted_detail(name, "is out of range"));
  return Status::Ok();
}

Status read_text(simdjson::dom::element e, std::string_view name, std::string& out) {
  std::string_view v;
  if (e.get_string().get(v)) return bad(quoted_detail(name, "must be a string"));
  if (v.empty()) return bad(quoted_detail(name, "must not be empty"));
  if (v.size() > kMaxRevocationValueBytes) return bad(quoted_detail(name, "is longer than 4096 bytes"));
  out = std::string(v);
  return Status::Ok();
}

}  // namespace

std::string_view revocation_kind_name(RevocationKind k) noexcept {
  switch (k) {
    case RevocationKind::jti: return "jti";
    case RevocationKind::subject: return "subject";
    case RevocationKind::session: return "session";
    case RevocationKind::logout: return "logout";
  }
  return "jti";
}

Result<RevocationEntry> parse_revocation_entry(std::string_view json) {
  // The largest entry (three 4096-byte strings, as jwtgate writes them) fits within this; bigger
  // is refused before the parser grows to its size (a value in Redis, a published message).
  if (json.size() > kMaxRevocationEntryBytes) return bad("a revocation entry is longer than 16 KiB");
  // One parser per thread: entries arrive by the thousand on a full sync.
  thread_local simdjson::dom::parser parser;
  thread_local bool ready = init_json_parser(parser, 1024);
  if (!ready) return bad("the JSON parser cannot be set up");
  simdjson::dom::object obj;
  if (Status s = parse_json_object(parser, json, false, "revocation entry", obj); !s) return s;
  std::optional<simdjson::dom::element> jti, iss, sub, sid, before, exp, logout_jti;
  for (auto field : obj) {
    const std::string_view k = field.key;
    std::optional<simdjson::dom::element>* slot = k == "jti"      ? &jti
                                                  : k == "iss"    ? &iss
                                                  : k == "sub"    ? &sub
                                                  : k == "sid"    ? &sid
                                                  : k == "before" ? &before
                                                  : k == "exp"    ? &exp
                                                  : k == "logout_jti" ? &logout_jti
                                                                  : nullptr;
    if (!slot) return bad(quoted_detail(k, "is not a revocation field (jti, iss, sub, sid, before, exp, logout_jti)"));
    if (*slot) return bad(quoted_detail(k, "appears twice"));
    *slot = field.value;
  }
  RevocationEntry e;
  if (logout_jti) {
    if (jti || sub || sid || before) return bad("a logout entry has only \"iss\", \"logout_jti\" and \"exp\"");
    if (!iss || !exp) return bad("a logout entry needs \"iss\" and \"exp\"");
    e.kind = RevocationKind::logout;
    if (Status s = read_text(*iss, "iss", e.iss); !s) return s;
    if (Status s = read_text(*logout_jti, "logout_jti", e.value); !s) return s;
  } else if (jti) {
    if (iss || sub || sid || before) return bad("a jti entry has only \"jti\" and \"exp\"");
    if (!exp) return bad("a jti entry needs \"exp\", the token's expiry");
    e.kind = RevocationKind::jti;
    if (Status s = read_text(*jti, "jti", e.value); !s) return s;
  } else if (sub) {
    if (sid) return bad("an entry names either \"sub\" or \"sid\", not both");
    if (!iss) return bad("a subject entry needs \"iss\"");
    if (!before) return bad("a subject entry needs \"before\": tokens issued before it are revoked");
    e.kind = RevocationKind::subject;
    if (Status s = read_text(*iss, "iss", e.iss); !s) return s;
    if (Status s = read_text(*sub, "sub", e.value); !s) return s;
    if (Status s = read_time(*before, "before", e.before); !s) return s;
  } else if (sid) {
    if (before) return bad("\"before\" belongs to subject entries only");
    if (!iss) return bad("a session entry needs \"iss\"");
    e.kind = RevocationKind::session;
    if (Status s = read_text(*iss, "iss", e.iss); !s) return s;
    if (Status s = read_text(*sid, "sid", e.value); !s) return s;
  } else {
    return bad("a revocation entry names \"jti\", \"iss\" and \"sub\", or \"iss\" and \"sid\"");
  }
  if (exp) {
    std::int64_t t = 0;
    if (Status s = read_time(*exp, "exp", t); !s) return s;
    e.exp = t;
  }
  return e;
}

std::string revocation_entry_json(const RevocationEntry& e) {
  JsonWriter w;
  w.begin_object();
  if (e.kind == RevocationKind::jti) {
    w.key("jti");
    w.string(e.value);
  } else {
    w.key("iss");
    w.string(e.iss);
    w.key(e.kind == RevocationKind::subject ? "sub" : e.kind == RevocationKind::session ? "sid" : "logout_jti");
    w.string(e.value);
    if (e.kind == RevocationKind::subject) {
      w.key("before");
      w.number(e.before);
    }
  }
  if (e.exp) {
    w.key("exp");
    w.number(*e.exp);
  }
  w.end_object();
  return w.take();
}

std::optional<RevocationDigest> revocation_digest(RevocationKind kind, std::string_view iss, std::string_view value) {
  // kind, then iss and value each with its length: no two field lists hash the same bytes.
  std::string input;
  input.reserve(iss.size() + value.size() + 24);
  input.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  if (kind != RevocationKind::jti) {
    input += std::to_string(iss.size());
    input.push_back(':');
    input += iss;
  }
  input += std::to_string(value.size());
  input.push_back(':');
  input += value;
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!hash_bytes(fetched_digest(Alg::HS256), input, hash, length) || length < RevocationDigest().size()) {
    return std::nullopt;
  }
  RevocationDigest out;
  std::memcpy(out.data(), hash, out.size());
  return out;
}

std::optional<RevocationDigest> revocation_digest(const RevocationEntry& e) { return revocation_digest(e.kind, e.iss, e.value); }

std::string revocation_digest_hex(const RevocationDigest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * d.size());
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

RevocationSubject revocation_subject(std::string_view iss, std::string_view sub, std::string_view sid,
                                     std::string_view jti, std::optional<double> iat) {
  RevocationSubject s;
  if (!jti.empty()) s.jti = revocation_digest(RevocationKind::jti, {}, jti);
  if (!iss.empty() && !sub.empty()) s.subject = revocation_digest(RevocationKind::subject, iss, sub);
  if (!iss.empty() && !sid.empty()) s.session = revocation_digest(RevocationKind::session, iss, sid);
  s.iat = iat;
  return s;
}

std::optional<RevocationRecord> revocation_record(const RevocationEntry& e) {
  auto d = revocation_digest(e);
  if (!d) return std::nullopt;
  RevocationRecord r;
  r.digest = *d;
  r.kind = e.kind;
  r.before = e.before;
  if (e.exp) r.expires = *e.exp;
  return r;
}

std::int64_t revocation_record_end(const RevocationRecord& r) noexcept {
  if (r.expires == INT64_MAX) return INT64_MAX;
  return r.kind == RevocationKind::jti ? r.expires + kExpiryMargin : r.expires;
}

bool revocation_record_ended(const RevocationRecord& r, std::int64_t now) noexcept { return revocation_record_end(r) <= now; }

RevocationTable::RevocationTable(const std::vector<RevocationRecord>& records, std::int64_t now) {
  const std::size_t n = std::max<std::size_t>(16, records.size() + records.size() / 3 + 1);
  slots_.resize(n);
  tags_.assign(n, 0);
  for (const RevocationRecord& r : records) {
    if (revocation_record_ended(r, now)) continue;
    const std::uint64_t h = keyed_hash(r.digest);
    std::size_t walked = 0;
    for (std::size_t i = home(h);; i = i + 1 == n ? 0 : i + 1, ++walked) {
      Slot& s = slots_[i];
      if (tags_[i] == 0) {
        longest_probe_ = std::max(longest_probe_, walked);
        tags_[i] = tag(h);
        s.digest = r.digest;
        s.before = r.before;
        s.expires = r.expires;
        ++size_;
        ++per_kind_[static_cast<std::size_t>(r.kind)];
        break;
      }
      if (s.digest == r.digest) {
        s.expires = std::max(s.expires, r.expires);
        s.before = std::max(s.before, r.before);
        break;
      }
    }
  }
}

namespace {

struct PlacementKey {
  std::uint64_t k0, k1;
  PlacementKey() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
      // Without randomness the table still works; it is only predictable. Mix in what varies.
      const auto t = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
      const auto a = reinterpret_cast<std::uintptr_t>(&bytes);
      std::memcpy(bytes, &t, 8);
      std::memcpy(bytes + 8, &a, 8);
    }
    std::memcpy(&k0, bytes, 8);
    std::memcpy(&k1, bytes + 8, 8);
    k0 |= 1;  // a zero factor would lose half the digest
    k1 |= 1;
  }
};

const PlacementKey& placement_key() {
  static const PlacementKey key;
  return key;
}

}  // namespace

std::uint64_t RevocationTable::keyed_hash(const RevocationDigest& d) noexcept {
  const PlacementKey& k = placement_key();
  std::uint64_t a, b;
  std::memcpy(&a, d.data(), 8);
  std::memcpy(&b, d.data() + 8, 8);
  // A multiply-fold of both halves, each masked with the key (wyhash's mum).
  const unsigned __int128 m = static_cast<unsigned __int128>(a ^ k.k0) * (b ^ k.k1);
  return static_cast<std::uint64_t>(m) ^ static_cast<std::uint64_t>(m >> 64);
}

std::size_t RevocationTable::home(std::uint64_t h) const noexcept {
  // Lemire's range reduction: no power-of-two rounding of the table, no division.
  return static_cast<std::size_t>((static_cast<unsigned __int128>(h) * slots_.size()) >> 64);
}

const RevocationTable::Slot* RevocationTable::find(const RevocationDigest& d) const noexcept {
  if (size_ == 0) return nullptr;
  const std::uint64_t h = keyed_hash(d);
  const std::uint8_t want = tag(h);
  std::uint64_t a, b;
  std::memcpy(&a, d.data(), 8);
  std::memcpy(&b, d.data() + 8, 8);
  const std::size_t n = slots_.size();
  for (std::size_t i = home(h);; i = i + 1 == n ? 0 : i + 1) {
    const std::uint8_t t = tags_[i];
    if (t == 0) return nullptr;
    if (t != want) continue;
    std::uint64_t sa, sb;
    std::memcpy(&sa, slots_[i].digest.data(), 8);
    std::memcpy(&sb, slots_[i].digest.data() + 8, 8);
    if (sa == a && sb == b) return &slots_[i];
  }
}

Status RevocationSet::check(const RevocationSubject& token, std::int64_t now, std::int64_t skew) const {
  if (deny_all) return {Reason::revocation_unavailable, deny_reason};
  // A jti entry holds while its token could pass (exp + skew); the others end at their exp.
  auto in_force = [&](const RevocationTable::Slot& r, RevocationKind kind) {
    return r.expires == INT64_MAX || now < r.expires + (kind == RevocationKind::jti ? skew : 0);
  };
  auto revoked = [&](const std::optional<RevocationDigest>& d, RevocationKind kind) {
    if (!d) return false;
    for (const auto* table : {base.get(), recent.get()}) {
      if (!table) continue;
      const RevocationTable::Slot* r = table->find(*d);
      if (!r || !in_force(*r, kind)) continue;
      // A token without iat cannot show it was issued after the cut-off.
      if (kind == RevocationKind::subject && token.iat && *token.iat >= static_cast<double>(r->before)) continue;
      return true;
    }
    return false;
  };
  if (revoked(token.jti, RevocationKind::jti)) return {Reason::revoked, "the token has been revoked"};
  if (revoked(token.session, RevocationKind::session)) return {Reason::revoked, "the token's session has ended"};
  if (revoked(token.subject, RevocationKind::subject)) {
    return {Reason::revoked, "the token was issued before its subject's tokens were revoked"};
  }
  return Status::Ok();
}

bool RevocationSet::holds(const RevocationDigest& d, std::int64_t now) const noexcept {
  for (const auto* table : {base.get(), recent.get()}) {
    if (!table) continue;
    const RevocationTable::Slot* r = table->find(d);
    if (r && (r->expires == INT64_MAX || now < r->expires)) return true;
  }
  return false;
}

std::size_t RevocationSet::size(RevocationKind k) const noexcept {
  return (base ? base->size(k) : 0) + (recent ? recent->size(k) : 0);
}

}  // namespace jwtgate::core
