#!/usr/bin/env bash
# Installs the peers (wrk, nginx, HAProxy from Debian's packages) and jwtgate's build
# dependencies, builds jwtgate (RelWithDebInfo, as the README builds it) into build-bench/, then
# runs bench/proxy_bench.py with any arguments given here (see --help). Results go to
# bench/results/latest.md (table) and latest.json.
# `bash bench/run.sh forward-auth [ARGS]` instead builds a Release jwtgate into build-release/ and
# runs bench/forward_auth_bench.py (nginx with no auth / auth_request to jwtgate / proxy_pass to
# jwtgate); results in bench/results/forward_auth.md and .json.
# `bash bench/run.sh tls [ARGS]` builds the same Release jwtgate and runs bench/tls_bench.py (TLS
# handshakes, resumptions and keep-alive HTTPS against nginx with the same certificate); results
# in bench/results/tls.md and .json.
# `bash bench/run.sh h2 [ARGS]` builds the same Release jwtgate and runs bench/h2_bench.py (h2load
# over h2c through jwtgate and through nginx: to an HTTP/1.1 upstream, to an h2c upstream, gRPC
# unary calls against grpc_pass, and jwtgate against a direct call); results in
# bench/results/h2.md and .json.
# `bash bench/run.sh revocation [ARGS]` builds the same Release jwtgate and runs
# bench/revocation_bench.py (revocation off against a 1-entry file, a 1,000,000-entry file and a
# real Redis 7 holding the same entries, on cache hits; RSS per million jtis, start to /readyz);
# results in bench/results/revocation.md and .json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
need=()
for pkg in wrk nginx-light haproxy python3 python3-cryptography util-linux nghttp2-client python3-h2 redis-tools; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The packaged services are not wanted running: the benchmark starts its own instances.
for svc in nginx haproxy; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then $sudo systemctl stop "$svc"; fi
done
if [ "${1:-}" = forward-auth ]; then
  shift
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DJWTGATE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-release -j"$(nproc)" --target jwtgate
  exec /usr/bin/python3 bench/forward_auth_bench.py --jwtgate build-release/jwtgate "$@"
fi
if [ "${1:-}" = h2 ]; then
  shift
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DJWTGATE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-release -j"$(nproc)" --target jwtgate
  exec /usr/bin/python3 bench/h2_bench.py --jwtgate build-release/jwtgate "$@"
fi
if [ "${1:-}" = revocation ]; then
  shift
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DJWTGATE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-release -j"$(nproc)" --target jwtgate
  exec /usr/bin/python3 bench/revocation_bench.py --jwtgate build-release/jwtgate "$@"
fi
if [ "${1:-}" = tls ]; then
  shift
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DJWTGATE_BUILD_BENCH=OFF >/dev/null
  cmake --build build-release -j"$(nproc)" --target jwtgate
  exec /usr/bin/python3 bench/tls_bench.py --jwtgate build-release/jwtgate "$@"
fi
cmake -S . -B build-bench -DJWTGATE_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j"$(nproc)" --target jwtgate core_bench
exec /usr/bin/python3 bench/proxy_bench.py --jwtgate build-bench/jwtgate "$@"
