// Revocations: what can be cut off before its exp, and the set every request is checked against.
//
// Three kinds, each named by the token fields it matches:
//   jti      the one token with that jti (any issuer), until the entry's exp (the token's own);
//   subject  every token of iss + sub issued before a time ("log out everywhere");
//   session  every token of iss carrying that sid (an OIDC session).
// An entry is stored as a 128-bit digest of its kind and fields, never as strings: the set is a
// flat table of 32-byte slots (and a tag byte each), a million revoked jtis cost tens of megabytes, and the
// fields a token is checked by are digested once when it is verified, so a check (cache hits
// included) is three probes and no allocation. Finding a different token with an entry's digest
// takes a second preimage of truncated SHA-256.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace jwtgate::core {

// `logout` is not a revocation of access tokens: it records a back-channel logout token's jti
// (per issuer), so a replay at any sidecar is refused. No access token is ever checked against it.
enum class RevocationKind : std::uint8_t { jti = 0, subject = 1, session = 2, logout = 3 };
inline constexpr std::size_t kRevocationKinds = 4;
std::string_view revocation_kind_name(RevocationKind k) noexcept;  // "jti", "subject", "session", "logout"

// One revocation as written (files, Redis values, pub/sub messages, the CLI): a JSON object,
//   {"jti":"J","exp":T}
//   {"iss":"I","sub":"S","before":T[,"exp":E]}
//   {"iss":"I","sid":"X"[,"exp":E]}
//   {"iss":"I","logout_jti":"J","exp":E}      (written by the back-channel logout endpoint)
// with times in seconds since the epoch. exp is the entry's own end; a jti entry's is the token's
// exp (required), extended by the token's provider's clock skew as the token itself is. before is
// exclusive (a token issued in that second passes).
struct RevocationEntry {
  RevocationKind kind = RevocationKind::jti;
  std::string iss;    // subject, session and logout
  std::string value;  // the jti, sub, sid, or the logout token's jti
  std::int64_t before = 0;          // subject only
  std::optional<std::int64_t> exp;  // none: until removed from its source
};

inline constexpr std::size_t kMaxRevocationEntryBytes = 16 * 1024;
inline constexpr std::size_t kMaxRevocationValueBytes = 4096;  // jti, iss, sub, sid

// Strict: exactly one of the shapes above, no other members, non-empty strings, integer times.
Result<RevocationEntry> parse_revocation_entry(std::string_view json);
std::string revocation_entry_json(const RevocationEntry& entry);

using RevocationDigest = std::array<unsigned char, 16>;
// The digest of a kind and its fields (jti: the jti alone). nullopt only when libcrypto fails.
std::optional<RevocationDigest> revocation_digest(RevocationKind kind, std::string_view iss, std::string_view value);
std::optional<RevocationDigest> revocation_digest(const RevocationEntry& entry);
std::string revocation_digest_hex(const RevocationDigest& d);

// What of a verified token a revocation can name, digested once at verification.
struct RevocationSubject {
  std::optional<RevocationDigest> jti, subject, session;
  std::optional<double> iat;
};
// `iss`, `sub`, `sid`, `jti`: the token's string claims ("" when absent or not a string).
RevocationSubject revocation_subject(std::string_view iss, std::string_view sub, std::string_view sid,
                                     std::string_view jti, std::optional<double> iat);

// An entry as the set keeps it.
struct RevocationRecord {
  RevocationDigest digest{};
  RevocationKind kind = RevocationKind::jti;
  std::int64_t before = 0;
  std::int64_t expires = INT64_MAX;  // seconds since the epoch; INT64_MAX: no end
};
std::optional<RevocationRecord> revocation_record(const RevocationEntry& entry);
// Whether `r` can no longer refuse anything at `now` (a jti record: not even with a provider's
// clock skew), so tables and sources may drop it.
bool revocation_record_ended(const RevocationRecord& r, std::int64_t now) noexcept;
// When that is (INT64_MAX: never).
std::int64_t revocation_record_end(const RevocationRecord& r) noexcept;

// An immutable open-addressing table of records, one per digest (a digest written twice keeps
// the later expiry and, for subjects, the later `before`). Built once, then read by any thread.
class RevocationTable {
 public:
  // Records that have expired by `now` are left out.
  RevocationTable(const std::vector<RevocationRecord>& records, std::int64_t now);
  // The kind is not kept: it is part of what the digest covers, so a digest names one kind.
  struct Slot {
    RevocationDigest digest{};
    std::int64_t before = 0;
    std::int64_t expires = 0;
  };
  const Slot* find(const RevocationDigest& d) const noexcept;
  std::size_t size() const noexcept { return size_; }
  std::size_t size(RevocationKind k) const noexcept { return per_kind_[static_cast<std::size_t>(k)]; }
  std::size_t memory_bytes() const noexcept { return slots_.size() * (sizeof(Slot) + 1); }
  // The longest walk from a digest's home slot to its own: what a lookup costs at worst.
  std::size_t longest_probe() const noexcept { return longest_probe_; }

 private:
  // Where a digest lives and its tag, from a hash keyed with a per-process secret: digests are
  // public (anyone can compute one for a jti of their choosing), so unkeyed placement would let
  // whoever writes entries pile them into one cluster and make every build and lookup crawl.
  static std::uint64_t keyed_hash(const RevocationDigest& d) noexcept;
  std::size_t home(std::uint64_t h) const noexcept;
  static std::uint8_t tag(std::uint64_t h) noexcept { return static_cast<std::uint8_t>(h | 1); }
  std::vector<Slot> slots_;  // at most 3/4 full, probed linearly
  // One byte per slot (0: empty, else 7 bits of the digest): nearly every lookup is for a token
  // nobody revoked, and such a miss probes a few slots; the tags of those share a cache line.
  std::vector<std::uint8_t> tags_;
  std::size_t size_ = 0;
  std::size_t longest_probe_ = 0;
  std::array<std::size_t, kRevocationKinds> per_kind_{};
};

// What a worker checks: a large table rebuilt on full syncs and a small one of the changes
// since, both shared and immutable, so a change costs a copy of the small one only.
struct RevocationSet {
  std::shared_ptr<const RevocationTable> base, recent;
  // on_unavailable: deny and a source is not in sync: every token is refused.
  bool deny_all = false;
  std::string deny_reason;

  // revoked (401 invalid_token) or revocation_unavailable (503), else ok. `skew`: the clock
  // skew allowed on the token's provider; jti entries outlive the token's exp by it.
  Status check(const RevocationSubject& token, std::int64_t now, std::int64_t skew) const;
  std::size_t size(RevocationKind k) const noexcept;
  // Whether an entry with digest `d` (which covers its kind) holds at `now`, ignoring deny_all:
  // the logout replay check.
  bool holds(const RevocationDigest& d, std::int64_t now) const noexcept;
};

}  // namespace jwtgate::core
