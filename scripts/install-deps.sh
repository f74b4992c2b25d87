#!/usr/bin/env bash
# Installs everything jwtgate needs to build and test on Debian 12, idempotently, as root.
#
# Debian packages come from the machine's configured sources. llhttp is not packaged for
# Debian 12, and Debian 12's nghttp2 (1.52) predates nghttp2_session_mem_recv2/mem_send2 (1.61)
# and its CONTINUATION-flood limit (1.61, CVE-2024-28182), and Debian 12's hiredis (0.14) has no
# TLS (hiredis_ssl, for rediss://, arrived in 1.0), so all three come from Debian 13: their -dev
# and runtime packages are fetched with apt's own tools through a private apt configuration whose
# source entry is derived from the machine's existing Debian entry (same mirror, same keyring;
# only the suite differs), then unpacked into .deps/llhttp, .deps/nghttp2 and .deps/hiredis in the
# project. jwtgate links them statically, so the binary does not depend on where they were unpacked.
# Nothing outside the project is changed by that step: the system's sources and package state
# are left as they were.
#
# The tests check /metrics output with promtool. Installing Debian 12's prometheus package would
# also install (and start) a Prometheus server, so its .deb is only downloaded, from the machine's
# own sources into .deps/debs, and unpacked into .deps/prometheus; nothing is configured or run.
# The forward-auth tests run real nginx and Caddy in front of jwtgate: their packages are
# unpacked the same way into .deps/nginx and .deps/caddy (their shared libraries are installed as
# ordinary packages); no nginx or Caddy service is installed or started.
#
# The HTTP/2 tests (tests/h2) use Debian 12's nghttp2-client (nghttp, h2load), python3-grpcio and
# python3-h2 as real clients and servers.
# The revocation tests (tests/revocation) run Debian's Redis 7 on a loopback port of their own. The
# server binary is in redis-tools (as redis-check-rdb; Redis picks its role from argv[0], and the
# redis-server package only adds a symlink and a system service on port 6379): the tests start it
# through a redis-server symlink in their temporary directory, and no service is installed.
# The TLS tests (tests/tls) drive jwtgate with the curl and openssl command-line tools.
# --testssl also installs Debian's testssl.sh, for the manual audit `tests/tls/e2e.py --testssl`
# runs against jwtgate's TLS listeners; ctest does not need it.
# --fuzz also installs clang-14 and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) for
# scripts/fuzz.sh; the normal build and tests do not need them.
# --build-only installs what building the jwtgate binary needs and nothing for the tests (no
# Python packages, no promtool): deploy/Dockerfile's build stage uses it.
# --containers also installs podman (runc, netavark, aardvark-dns), podman-compose and debootstrap
# for tests/deploy/run.sh, and Node.js with npm for the offline manifest validation.
set -euo pipefail

fuzz=0 build_only=0 containers=0 testssl=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    --build-only) build_only=1 ;;
    --containers) containers=1 ;;
    --testssl) testssl=1 ;;
    *) echo "install-deps: unknown argument $arg (only --fuzz, --build-only, --containers, --testssl)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
llhttp_suite=${JWTGATE_LLHTTP_SUITE:-trixie}

packages=(g++ cmake make pkg-config ca-certificates
          libuv1-dev libssl-dev openssl libsimdjson-dev libcurl4-openssl-dev libyaml-cpp-dev doctest-dev)
if [ "$build_only" -eq 0 ]; then packages+=(python3-jwt python3-jwcrypto python3-cryptography python3-h11 curl
                                                  nghttp2-client python3-grpcio python3-h2 redis-tools
                                                  libcrypt1 libpcre2-8-0 libssl3 zlib1g libzstd1); fi
if [ "$fuzz" -eq 1 ]; then packages+=(clang-14 libclang-rt-14-dev); fi
if [ "$testssl" -eq 1 ]; then packages+=(testssl.sh); fi
if [ "$containers" -eq 1 ]; then
  packages+=(podman runc netavark aardvark-dns slirp4netns uidmap fuse-overlayfs iptables podman-compose
             debootstrap catatonit python3-yaml)
  # Machines of this kind come with Node.js and npm (not Debian's); Debian's are the fallback.
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- tools unpacked from this machine's own apt sources, never installed ------------------------
# unpack_deb PACKAGE WHY COMMAND...: unless COMMAND already runs, downloads PACKAGE's candidate .deb
# into .deps/debs and unpacks it into .deps/PACKAGE, then checks that COMMAND runs. Installing the
# package instead would configure and start its service (a Prometheus server, an nginx on port 80,
# a Caddy with its admin API) on the machine.
unpack_deb() {
  local package=$1 why=$2; shift 2
  "$@" >/dev/null 2>&1 && return 0
  local version
  version=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    as_root apt-get update -qq
    version=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  fi
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "install-deps: no $package package in this machine's apt sources" >&2
    exit 1
  fi
  local debs="$here/.deps/debs" dir="$here/.deps/$package"
  # apt-get download's file name: the version with its epoch colon escaped.
  local deb="$debs/${package}_${version//:/%3a}_$(dpkg --print-architecture).deb"
  if [ ! -f "$deb" ]; then
    echo "install-deps: fetching $package $version ($why) from this machine's apt sources"
    mkdir -p "$debs"
    (cd "$debs" && apt-get -qq -o "APT::Sandbox::User=root" download "$package=$version")
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dpkg-deb -x "$deb" "$dir"
  if ! "$@" >/dev/null 2>&1; then
    echo "install-deps: $1 does not run" >&2
    exit 1
  fi
  echo "install-deps: $package unpacked into $dir"
}

# promtool checks /metrics output; nginx (auth_request is built into Debian 12's nginx) and
# Caddy 2.6 are the gateways of tests/forward_auth. The tests run them from .deps with their
# configs, logs and pid files in a temporary directory.
if [ "$build_only" -eq 0 ]; then
  unpack_deb prometheus "for promtool" "$here/.deps/prometheus/usr/bin/promtool" --version
  unpack_deb nginx "for the forward-auth tests" "$here/.deps/nginx/usr/sbin/nginx" -v
  unpack_deb caddy "for the forward-auth tests" "$here/.deps/caddy/usr/bin/caddy" version
fi


# --- llhttp, nghttp2 and hiredis from Debian 13 -------------------------------------------------------
needed=()
[ -f "$here/.deps/llhttp/.complete" ] || needed+=(llhttp:libllhttp-dev)
[ -f "$here/.deps/nghttp2/.complete" ] || needed+=(nghttp2:libnghttp2-dev)
[ -f "$here/.deps/hiredis/.complete" ] || needed+=(hiredis:libhiredis-dev)
[ ${#needed[@]} -gt 0 ] || exit 0

# Find the machine's main Debian entry: its URI and keyring. deb822 (.sources) first, then the
# one-line format. The security archive is skipped: both live in the main archive.
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
uri="" keyring=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  read -r uri keyring < <(awk -v cn="$codename" '
    BEGIN { RS=""; FS="\n" }
    {
      u=""; s=""; k=""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/)      { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u=a[1] }
        if ($i ~ /^Suites:/)    { sub(/^Suites:[ \t]*/, "", $i); s=" " $i " " }
        if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); k=$i }
      }
      if (u != "" && u !~ /security/ && index(s, " " cn " ") > 0) { print u, k; exit }
    }' "$f") || true
  [ -n "$uri" ] && break
done
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(awk -v cn="$codename" '$1 == "deb" && $0 !~ /security/ {
          for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { if ($(i+1) == cn) { print $i; exit } }
        }' /etc/apt/sources.list)
fi
if [ -z "$uri" ]; then
  echo "install-deps: cannot find this machine's Debian source entry for '$codename'" >&2
  exit 1
fi
[ -n "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" "$work/debs"
: > "$work/status"
cat > "$work/etc/sources.list" <<SRC
deb [signed-by=$keyring] $uri $llhttp_suite main
SRC
apt_opts=(-o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
          -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
          -o "Dir::State::Lists=$work/lists" -o "Dir::State::status=$work/status"
          -o "Dir::Cache=$work/cache" -o "APT::Architecture=$(dpkg --print-architecture)"
          -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root" -qq)
echo "install-deps: fetching ${needed[*]#*:} from $uri $llhttp_suite"
apt-get "${apt_opts[@]}" update
for item in "${needed[@]}"; do
  name=${item%%:*} dev=${item#*:}
  # The -dev package's runtime library, named after its soname (libllhttp9.2, libnghttp2-14).
  runtime=$(apt-cache "${apt_opts[@]}" depends "$dev" | awk -v n="lib$name" '$1 == "Depends:" && index($2, n) == 1 { print $2; exit }')
  if [ -z "$runtime" ]; then
    echo "install-deps: $dev in $llhttp_suite names no runtime package" >&2
    exit 1
  fi
  rm -rf "$work/debs" && mkdir -p "$work/debs"
  (cd "$work/debs" && apt-get "${apt_opts[@]}" download "$dev" "$runtime")
  prefix="$here/.deps/$name"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$prefix"
  done
  touch "$prefix/.complete"
  echo "install-deps: $name unpacked into $prefix"
done
