#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/json_text.h"
#include "core/json_writer.h"
#include "core/token.h"

namespace jwtgate::cli {

int decode_command(int argc, char** argv) {
  Args args(argc, argv, 2, {"max-token-bytes"});
  if (!args.ok() || args.positional().size() != 1) {
    std::cerr << "usage: jwtgate decode TOKEN   (TOKEN '-' reads standard input)\n";
    if (!args.ok()) std::cerr << "error: " << args.error() << "\n";
    return kExitUsage;
  }
  std::string token, error;
  if (!read_token_argument(args.positional()[0], token, error)) {
    std::cerr << "error: " << error << "\n";
    return kExitUsage;
  }
  core::Token decoded;
  core::Status s = decoded.decode_unverified(token, 1 << 20);
  if (!s) {
    std::cerr << "error: cannot decode token: " << s.detail() << "\n";
    return kExitInvalid;
  }
  core::JsonWriter w;
  w.begin_object();
  w.key("verified"); w.boolean(false);
  w.key("warning"); w.string("UNVERIFIED: the signature and claims were not checked; use 'jwtgate verify'");
  w.key("header"); w.raw(compact_json(decoded.header_json()));
  w.key("payload"); w.raw(compact_json(decoded.payload_json()));
  w.end_object();
  std::cout << w.take() << "\n";
  return kExitOk;
}

}  // namespace jwtgate::cli
