#include <doctest/doctest.h>

#include <string>

#include "core/json_object.h"

using namespace jwtgate::core;

namespace {
Status parse(const std::string& json) {
  simdjson::dom::parser parser;
  REQUIRE(init_json_parser(parser));
  simdjson::dom::object obj;
  return parse_json_object(parser, json, false, "doc", obj);
}
}  // namespace

TEST_CASE("a JSON object parses") { CHECK(parse(R"({"a":1,"b":{"c":[1,{"d":2}]}})").ok()); }

TEST_CASE("non-objects are refused") {
  for (const char* json : {"[]", "1", "\"s\"", "null", "", "{", "{\"a\":1} x", "{\"a\":1}{\"b\":2}"}) {
    Status s = parse(json);
    CHECK(s.reason() == Reason::malformed);
  }
}

TEST_CASE("duplicate member names are refused, escaped spellings included, at any depth") {
  CHECK(parse(R"({"exp":1,"exp":2})").reason() == Reason::malformed);
  CHECK(parse(R"({"exp":1,"\u0065xp":2})").reason() == Reason::malformed);
  CHECK(parse(R"({"a":{"x":1,"\u0078":2}})").reason() == Reason::malformed);
  CHECK(parse(R"({"a":[{"x":1,"x":1}]})").reason() == Reason::malformed);
  CHECK(parse(R"({"exp":1,"\u0065xq":2})").ok());
}

TEST_CASE("duplicates are found in objects with many members") {
  std::string json = "{";
  for (int i = 0; i < 100; ++i) json += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  CHECK(parse(json + "\"end\":0}").ok());
  CHECK(parse(json + "\"k5\":0}").reason() == Reason::malformed);
}

TEST_CASE("nesting deeper than the bound is refused") {
  auto nested = [](std::size_t depth) {
    std::string s;
    for (std::size_t i = 0; i < depth; ++i) s += "{\"a\":";
    s += "1";
    for (std::size_t i = 0; i < depth; ++i) s += "}";
    return s;
  };
  CHECK(parse(nested(kMaxJsonDepth - 1)).ok());
  Status s = parse(nested(kMaxJsonDepth + 5));
  CHECK(s.reason() == Reason::malformed);
  CHECK(s.detail().find("nests deeper") != std::string::npos);
}

TEST_CASE("invalid UTF-8 is refused") { CHECK(parse("{\"a\":\"\xff\"}").reason() == Reason::malformed); }
