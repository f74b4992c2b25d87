#!/usr/bin/env bash
# Makes the image deploy/Dockerfile builds FROM (debian:bookworm) exist in podman's local store,
# without a registry: this machine reaches Debian's package mirror but no container registry, so
# the base is bootstrapped with debootstrap (minbase) from the mirror the system's own apt sources
# name, and imported under the name the Dockerfile uses. The Dockerfile stays the one users build
# against Docker Hub's debian:bookworm.
#
# The imported image is kept in podman's store (and its root tarball under
# ${JWTGATE_CACHE:-/var/cache/jwtgate-ci}), so later runs on the same machine skip the bootstrap.
set -euo pipefail

name=${1:-docker.io/library/debian:bookworm}
cache=${JWTGATE_CACHE:-/var/cache/jwtgate-ci}

if podman image exists "$name"; then
  echo "base-image: $name already in podman's store"
  exit 0
fi

# The URI of the system's first Debian source entry whose URI does (`~`) or does not (`!~`)
# name the security archive: deb822 first, then the one-line format.
source_uri() {
  local match=$1 f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk "/^URIs:/ && \$2 $match /security/ { print \$2; exit }" "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk "\$1 == \"deb\" && \$0 $match /security/ { for (i = 2; i <= NF; i++) if (\$i ~ /:\\/\\//) { print \$i; exit } }" /etc/apt/sources.list)
  fi
  echo "$uri"
}

mirror=$(source_uri '!~')
if [ -z "$mirror" ]; then
  echo "base-image: no Debian mirror in this machine's apt sources" >&2
  exit 1
fi
# The security archive, when the system has one (Docker Hub's image lists it too).
security=$(source_uri '~')

tarball="$cache/debian-bookworm-minbase.tar"
if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "base-image: debootstrap --variant=minbase bookworm from $mirror (a few minutes, once)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  # What Docker Hub's image has and a bootstrapped tree lacks: a deb822 source entry for the
  # same mirror (the project's install script derives llhttp's Debian 13 entry from it), no
  # cached package lists, no recommends.
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  if [ -n "$security" ]; then
    cat >> "$root/etc/apt/sources.list.d/debian.sources" <<SRC

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi
# An imported image has no configuration: PATH is what a build's RUN lines need.
podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' \
  "$tarball" "$name" >/dev/null
echo "base-image: imported $name ($(podman image inspect --format '{{.Size}}' "$name") bytes)"
