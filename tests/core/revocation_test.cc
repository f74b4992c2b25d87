#include <doctest/doctest.h>

#include <cstring>

#include "core/logout_token.h"
#include "core/revocation.h"
#include "core/token.h"
#include "tests/support/tokens.h"

using namespace jwtgate;
using namespace jwtgate::core;
using namespace jwtgate::testing;

namespace {

RevocationSet set_of(const std::vector<std::string>& lines, std::int64_t now = kNow) {
  std::vector<RevocationRecord> records;
  for (const auto& l : lines) {
    auto e = parse_revocation_entry(l);
    REQUIRE_MESSAGE(e.ok(), l, ": ", e.status().detail());
    records.push_back(*revocation_record(*e));
  }
  RevocationSet s;
  s.base = std::make_shared<const RevocationTable>(records, now);
  return s;
}

RevocationSubject token(std::string_view iss, std::string_view sub, std::string_view sid, std::string_view jti,
                        std::optional<double> iat = kNow) {
  return revocation_subject(iss, sub, sid, jti, iat);
}

}  // namespace

TEST_CASE("revocation entries: the three shapes parse and print back the same") {
  for (const char* line : {R"({"jti":"abc","exp":1700000300})", R"({"iss":"https://idp","sub":"alice","before":1700000000,"exp":1700086400})",
                           R"({"iss":"https://idp","sid":"s-1"})"}) {
    auto e = parse_revocation_entry(line);
    REQUIRE_MESSAGE(e.ok(), e.status().detail());
    CHECK(revocation_entry_json(*e) == line);
  }
}

TEST_CASE("revocation entries: anything but exactly one shape is refused with a reason") {
  const char* bad[] = {
      R"({"jti":"abc"})",                                      // jti without exp
      R"({"jti":"abc","exp":1,"iss":"x"})",                    // mixed shapes
      R"({"iss":"i","sub":"s"})",                              // subject without before
      R"({"sub":"s","before":1})",                             // subject without iss
      R"({"iss":"i","sub":"s","sid":"x","before":1})",         // both sub and sid
      R"({"iss":"i","sid":"x","before":1})",                   // before on a session
      R"({"iss":"i","sid":""})",                               // empty
      R"({"iss":"i","sid":"x","exp":"tomorrow"})",             // not a time
      R"({"iss":"i","sid":"x","exp":1.5})",                    // not whole
      R"({"iss":"i","sid":"x","exp":-1})",                     // out of range
      R"({"iss":"i","sid":"x","exp":99999999999999999999})",   // out of range
      R"({"iss":"i","sid":"x","subject":"typo"})",             // unknown member
      R"({"iss":"i","sid":"x","sid":"y"})",                    // duplicate
      R"({"iss":1,"sid":"x"})",                                // not a string
      R"(["jti","abc"])", "", "{", R"({})",
  };
  for (const char* line : bad) {
    auto e = parse_revocation_entry(line);
    CHECK_MESSAGE(!e.ok(), line);
    CHECK_MESSAGE(!e.status().detail().empty(), line);
  }
}

TEST_CASE("a jti entry revokes that token of any issuer, until its exp plus the skew") {
  const RevocationSet s = set_of({R"({"jti":"j1","exp":1700000300})"});
  CHECK(s.check(token("a", "alice", "", "j1"), kNow, 30).reason() == Reason::revoked);
  CHECK(s.check(token("b", "bob", "", "j1"), kNow, 30).reason() == Reason::revoked);
  CHECK(s.check(token("a", "alice", "", "j2"), kNow, 30).ok());
  CHECK(s.check(token("a", "alice", "", ""), kNow, 30).ok());
  CHECK(s.check(token("a", "alice", "", "j1"), kNow + 329, 30).reason() == Reason::revoked);
  CHECK(s.check(token("a", "alice", "", "j1"), kNow + 330, 30).ok());
}

TEST_CASE("a subject entry revokes that issuer's subject issued before T; no iat counts as before") {
  const RevocationSet s = set_of({R"({"iss":"https://idp","sub":"alice","before":1700000000})"});
  CHECK(s.check(token("https://idp", "alice", "", "", kNow - 1), kNow, 0).reason() == Reason::revoked);
  CHECK(s.check(token("https://idp", "alice", "", "", std::nullopt), kNow, 0).reason() == Reason::revoked);
  CHECK(s.check(token("https://idp", "alice", "", "", kNow), kNow, 0).ok());  // issued at T: after the cut
  CHECK(s.check(token("https://other", "alice", "", "", kNow - 1), kNow, 0).ok());
  CHECK(s.check(token("https://idp", "alicex", "", "", kNow - 1), kNow, 0).ok());
  // The fields are length-prefixed: moving bytes between iss and sub is another subject.
  CHECK(s.check(token("https://idpa", "lice", "", "", kNow - 1), kNow, 0).ok());
}

TEST_CASE("a session entry revokes every token of that issuer carrying the sid; its exp ends it") {
  const RevocationSet s = set_of({R"({"iss":"https://idp","sid":"s1","exp":1700000100})"});
  CHECK(s.check(token("https://idp", "alice", "s1", "j"), kNow, 0).reason() == Reason::revoked);
  CHECK(s.check(token("https://idp", "bob", "s1", ""), kNow, 0).reason() == Reason::revoked);
  CHECK(s.check(token("https://idp", "alice", "s2", "j"), kNow, 0).ok());
  CHECK(s.check(token("https://evil", "alice", "s1", "j"), kNow, 0).ok());
  CHECK(s.check(token("https://idp", "alice", "s1", "j"), kNow + 101, 0).ok());
  // The kinds do not mix: a sid that equals a revoked jti is not that jti.
  const RevocationSet j = set_of({R"({"jti":"s1","exp":1700000300})"});
  CHECK(j.check(token("https://idp", "alice", "s1", "x"), kNow, 0).ok());
}

TEST_CASE("the recent table adds to the base; a digest written twice keeps the later before and exp") {
  RevocationSet s = set_of({R"({"iss":"i","sub":"alice","before":1700000000,"exp":1700000100})",
                            R"({"iss":"i","sub":"alice","before":1700000050,"exp":1700000200})"});
  CHECK(s.base->size() == 1);
  CHECK(s.check(token("i", "alice", "", "", kNow + 10), kNow + 150, 0).reason() == Reason::revoked);
  std::vector<RevocationRecord> recent{*revocation_record(*parse_revocation_entry(R"({"jti":"late","exp":1700000300})"))};
  s.recent = std::make_shared<const RevocationTable>(recent, kNow);
  CHECK(s.check(token("x", "y", "", "late"), kNow, 0).reason() == Reason::revoked);
  CHECK(s.size(RevocationKind::jti) == 1);
  CHECK(s.size(RevocationKind::subject) == 1);
  s.deny_all = true;
  CHECK(s.check(token("x", "y", "", "other"), kNow, 0).reason() == Reason::revocation_unavailable);
}

TEST_CASE("a table of a million jtis answers every one of them, and no other") {
  std::vector<RevocationRecord> records;
  const int n = 200000;  // enough to exercise probing; the bench measures a million
  records.reserve(n);
  for (int i = 0; i < n; ++i) {
    RevocationEntry e;
    e.value = "jti-" + std::to_string(i);
    e.exp = kNow + 300;
    records.push_back(*revocation_record(e));
  }
  RevocationTable t(records, kNow);
  CHECK(t.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; i += 997) CHECK(t.find(*revocation_digest(RevocationKind::jti, {}, "jti-" + std::to_string(i))));
  for (int i = n; i < n + 2000; ++i) CHECK_FALSE(t.find(*revocation_digest(RevocationKind::jti, {}, "jti-" + std::to_string(i))));
  CHECK(t.memory_bytes() <= std::size_t{n} * 33 * 4 / 3 + 64);  // 32-byte slots and a tag byte, at most 3/4 full
  // Ended entries are left out of a rebuilt table.
  RevocationTable later(records, kNow + 300 + 601);
  CHECK(later.size() == 0);
}

TEST_CASE("logout tokens: the spec's rules, and no logout token passes as an access token") {
  const TestKey key = make_key(Alg::ES256, "k1");
  ClaimPolicy policy;
  policy.issuer = "https://idp.test/";
  policy.audiences = {"api"};
  policy.clock_skew_seconds = 30;
  const std::string event = R"("events":{"http://schemas.openid.net/event/backchannel-logout":{}})";
  auto make = [&](const std::string& claims, const std::string& typ = "logout+jwt") {
    std::string header = R"({"alg":"ES256","kid":"k1")" + (typ.empty() ? std::string() : ",\"typ\":\"" + typ + "\"") + "}";
    return signed_token(header, claims, key);
  };
  const std::string base = R"("iss":"https://idp.test/","aud":"api","iat":1700000000,"jti":"L1",)";
  auto check = [&](const std::string& token_text, std::int64_t now = kNow) {
    Token t;
    REQUIRE(t.decode(token_text).ok());
    LogoutClaims c;
    return std::make_pair(check_logout_token(t, policy, 300, now, c), c);
  };
  auto [ok, claims] = check(make("{" + base + R"("sid":"s1",)" + event + "}"));
  REQUIRE_MESSAGE(ok.ok(), ok.detail());
  CHECK(claims.sid == "s1");
  CHECK(claims.jti == "L1");
  CHECK(check(make("{" + base + R"("sub":"alice",)" + event + "}"), kNow).first.ok());
  CHECK(check(make("{" + base + R"("sub":"alice",)" + event + "}", "")).first.ok());
  CHECK(check(make("{" + base + R"("sub":"alice",)" + event + "}", "application/logout+jwt")).first.ok());

  const std::vector<std::pair<std::string, std::string>> refused = {
      {"typ JWT", make("{" + base + R"("sub":"alice",)" + event + "}", "JWT")},
      {"no events", make("{" + base + R"("sub":"alice"})")},
      {"other event", make("{" + base + R"("sub":"alice","events":{"http://example.com/x":{}}})")},
      {"event not an object", make("{" + base + R"("sub":"alice","events":{"http://schemas.openid.net/event/backchannel-logout":1}})")},
      {"nonce", make("{" + base + R"("sub":"alice","nonce":"n",)" + event + "}")},
      {"no sub or sid", make("{" + base + event + "}")},
      {"no jti", make(R"({"iss":"https://idp.test/","aud":"api","iat":1700000000,"sub":"a",)" + event + "}")},
      {"no iat", make(R"({"iss":"https://idp.test/","aud":"api","jti":"L","sub":"a",)" + event + "}")},
      {"wrong aud", make(R"({"iss":"https://idp.test/","aud":"other","iat":1700000000,"jti":"L","sub":"a",)" + event + "}")},
      {"wrong iss", make(R"({"iss":"https://evil/","aud":"api","iat":1700000000,"jti":"L","sub":"a",)" + event + "}")},
      {"expired", make("{" + base + R"("sub":"alice","exp":1699999000,)" + event + "}")},
  };
  for (const auto& [what, text] : refused) CHECK_MESSAGE(!check(text).first.ok(), what);
  // Too old, and from the future.
  CHECK(!check(make("{" + base + R"("sub":"alice",)" + event + "}"), kNow + 331).first.ok());
  CHECK(check(make("{" + base + R"("sub":"alice",)" + event + "}"), kNow + 329).first.ok());
  CHECK(!check(make("{" + base + R"("sub":"alice",)" + event + "}"), kNow - 31).first.ok());

  Token t;
  REQUIRE(t.decode(make("{" + base + R"("sub":"alice",)" + event + "}", "")).ok());
  CHECK(looks_like_logout_token(t));
  REQUIRE(t.decode(make("{" + base + R"("sub":"alice"})", "logout+JWT")).ok());
  CHECK(looks_like_logout_token(t));
  REQUIRE(t.decode(make("{" + base + R"("sub":"alice"})", "JWT")).ok());
  CHECK_FALSE(looks_like_logout_token(t));
}

TEST_CASE("digests chosen to share their leading bytes do not pile up: placement is keyed per process") {
  // What someone who may write entries can do with digests anyone can compute: make the bytes an
  // unkeyed placement would use all equal. Here the records are made directly.
  std::vector<RevocationRecord> records;
  for (std::uint32_t i = 0; i < 50000; ++i) {
    RevocationRecord r;
    std::memcpy(r.digest.data() + 12, &i, sizeof i);  // bytes 0-11 zero in every one
    r.expires = kNow + 300;
    records.push_back(r);
  }
  RevocationTable t(records, kNow);
  CHECK(t.size() == records.size());
  // Random placement at 3/4 full walks at most a few hundred slots; a pile-up walks ~50,000.
  CHECK(t.longest_probe() < 2000);
  for (std::uint32_t i = 0; i < 50000; i += 101) CHECK(t.find(records[i].digest));
}

TEST_CASE("logout entries, and the size bound on any entry") {
  auto e = parse_revocation_entry(R"({"iss":"https://idp","logout_jti":"L1","exp":1700000400})");
  REQUIRE_MESSAGE(e.ok(), e.status().detail());
  CHECK(e->kind == RevocationKind::logout);
  CHECK(revocation_entry_json(*e) == R"({"iss":"https://idp","logout_jti":"L1","exp":1700000400})");
  CHECK(!parse_revocation_entry(R"({"logout_jti":"L1","exp":1})").ok());                 // no iss
  CHECK(!parse_revocation_entry(R"({"iss":"i","logout_jti":"L1"})").ok());               // no exp
  CHECK(!parse_revocation_entry(R"({"iss":"i","logout_jti":"L1","sid":"x","exp":1})").ok());
  // A logout entry never refuses an access token, even one whose jti is the logout token's.
  const RevocationSet s = set_of({R"({"iss":"https://idp","logout_jti":"L1","exp":1700000400})"});
  CHECK(s.check(token("https://idp", "alice", "", "L1"), kNow, 0).ok());
  CHECK(s.holds(*revocation_digest(RevocationKind::logout, "https://idp", "L1"), kNow));
  CHECK_FALSE(s.holds(*revocation_digest(RevocationKind::logout, "https://other", "L1"), kNow));
  CHECK_FALSE(s.holds(*revocation_digest(RevocationKind::logout, "https://idp", "L1"), 1700000400));
  // Anything longer than the longest entry is refused before it is parsed.
  CHECK(!parse_revocation_entry(R"({"jti":")" + std::string(17000, 'x') + R"(","exp":1})").ok());
}
