#include "tests/fuzz/http_fuzz_parse.h"

namespace jwtgate::fuzz {
namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

StreamParser* self(llhttp_t* p) { return static_cast<StreamParser*>(p->data); }

}  // namespace

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string cgi_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    const char l = lower(c);
    out += (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') ? l : '_';
  }
  return out;
}

std::vector<std::string_view> Message::all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const Field& f : headers) {
    if (iequal(f.name, name)) out.push_back(f.value);
  }
  return out;
}

StreamParser::StreamParser(llhttp_type_t type, HeadPolicy policy) : policy_(std::move(policy)) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_status = on_status;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_body = on_body;
  settings_.on_message_complete = on_message_complete;
  llhttp_init(&parser_, type, &settings_);
  parser_.data = this;
}

void StreamParser::feed(std::string_view data) {
  if (finished_) return;
  if (upgraded_) {
    after_upgrade_ += data.size();
    return;
  }
  if (failed()) return;
  while (true) {
    const llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
    if (err == HPE_OK) {
      fed_ += data.size();
      return;
    }
    const char* pos = llhttp_get_error_pos(&parser_);
    const std::size_t used = pos ? static_cast<std::size_t>(pos - data.data()) : data.size();
    fed_ += used;
    data.remove_prefix(used);
    if (err == HPE_PAUSED) {
      // Paused by on_message_complete, only to learn where the message ends.
      messages_.back().end_offset = fed_;
      llhttp_resume(&parser_);
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE) {
      upgraded_ = true;
      after_upgrade_ += data.size();
      return;
    }
    error_ = err;
    reason_ = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "";
    return;
  }
}

void StreamParser::finish() {
  if (finished_) return;
  finished_ = true;
  if (failed() || upgraded_) return;
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if ((err == HPE_OK || err == HPE_PAUSED) && !messages_.empty() && messages_.back().complete &&
      messages_.back().end_offset == 0) {
    messages_.back().end_offset = fed_;
  }
}

int StreamParser::on_message_begin(llhttp_t* p) {
  auto* s = self(p);
  s->messages_.emplace_back();
  s->in_value_ = false;
  return 0;
}

int StreamParser::on_url(llhttp_t* p, const char* at, std::size_t len) {
  self(p)->messages_.back().url.append(at, len);
  return 0;
}

int StreamParser::on_status(llhttp_t* p, const char* at, std::size_t len) {
  self(p)->messages_.back().reason.append(at, len);
  return 0;
}

int StreamParser::on_header_field(llhttp_t* p, const char* at, std::size_t len) {
  auto* s = self(p);
  Message& m = s->messages_.back();
  std::vector<Field>& fields = m.head_done ? m.trailers : m.headers;
  if (s->in_value_ || fields.empty()) fields.push_back({std::string(at, len), std::string()});
  else fields.back().name.append(at, len);
  s->in_value_ = false;
  return 0;
}

int StreamParser::on_header_value(llhttp_t* p, const char* at, std::size_t len) {
  auto* s = self(p);
  Message& m = s->messages_.back();
  std::vector<Field>& fields = m.head_done ? m.trailers : m.headers;
  s->in_value_ = true;
  if (!fields.empty()) fields.back().value.append(at, len);
  return 0;
}

int StreamParser::on_headers_complete(llhttp_t* p) {
  auto* s = self(p);
  Message& m = s->messages_.back();
  m.head_done = true;
  m.method = p->type == HTTP_REQUEST ? p->method : -1;
  m.status = p->type == HTTP_RESPONSE ? p->status_code : 0;
  m.http_major = p->http_major;
  m.http_minor = p->http_minor;
  m.keep_alive = llhttp_should_keep_alive(p) != 0;
  m.chunked = (p->flags & F_CHUNKED) != 0;
  m.has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  m.upgrade = p->upgrade != 0;
  const int verdict = s->policy_ ? s->policy_(m, s->messages_.size() - 1) : 0;
  m.needs_eof = verdict == 0 && llhttp_message_needs_eof(p) != 0;
  return verdict;
}

int StreamParser::on_body(llhttp_t* p, const char* at, std::size_t len) {
  self(p)->messages_.back().body.append(at, len);
  return 0;
}

int StreamParser::on_message_complete(llhttp_t* p) {
  auto* s = self(p);
  s->messages_.back().complete = true;
  // Keep-alive as llhttp judges it once the whole message is known.
  s->messages_.back().keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

ClientMessages read_client_messages(std::string_view stream) {
  ClientMessages out;
  out.parsers.push_back(std::make_unique<StreamParser>(HTTP_REQUEST));
  out.parsers.back()->feed(stream);
  std::size_t offset = 0;
  while (true) {
    StreamParser& p = *out.parsers.back();
    for (const auto& m : p.messages()) out.asked.push_back(&m);
    if (!p.upgraded() || p.messages().empty()) break;
    offset += p.fed();
    out.parsers.push_back(std::make_unique<StreamParser>(HTTP_REQUEST));
    out.parsers.back()->feed(stream.substr(offset));
  }
  return out;
}

std::unique_ptr<StreamParser> read_client_responses(std::string_view received, bool eof,
                                                    const std::vector<const Message*>& asked) {
  auto responses = std::make_unique<StreamParser>(
      HTTP_RESPONSE, [&asked, finals = std::size_t{0}](const Message& r, std::size_t) mutable {
        if (r.status >= 100 && r.status < 200 && r.status != 101) return 1;  // interim: no body
        const std::size_t k = finals++;
        return k < asked.size() && asked[k]->method == HTTP_HEAD ? 1 : 0;
      });
  responses->feed(received);
  if (eof) responses->finish();
  return responses;
}

}  // namespace jwtgate::fuzz
