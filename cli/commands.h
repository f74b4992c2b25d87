// The jwtgate subcommands for people working with tokens. Each returns the process exit code.
#pragma once

namespace jwtgate::cli {

int decode_command(int argc, char** argv);   // jwtgate decode TOKEN
int verify_command(int argc, char** argv);   // jwtgate verify --jwks FILE ... TOKEN
int keygen_command(int argc, char** argv);   // jwtgate keygen --alg ALG [--kid K] [--out PREFIX]
int mint_command(int argc, char** argv);     // jwtgate mint --key FILE --alg ALG --claims JSON --ttl 15m
int dev_command(int argc, char** argv);      // jwtgate (no config): the development default
int dev_idp_command(int argc, char** argv);  // jwtgate dev-idp: the development OpenID provider
int check_config_command(int argc, char** argv);  // jwtgate check-config --config FILE
int serve_command(int argc, char** argv);    // jwtgate --config FILE
int health_command(int argc, char** argv);   // jwtgate health [--url URL] [--timeout DUR]
int echo_command(int argc, char** argv);     // jwtgate echo [--listen A] [--name NAME]
int revoke_command(int argc, char** argv);   // jwtgate revoke (--redis URL | --file PATH) SELECTOR

// Exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;  // the token is not valid
inline constexpr int kExitUsage = 2;    // bad arguments or unreadable input

}  // namespace jwtgate::cli
