#!/usr/bin/env bash
# The deploy tests (.ci/run runs this): validates the Kubernetes manifests offline against the
# API schemas, builds the image from this tree with deploy/Dockerfile, and runs it for real with
# Debian's podman (tests/deploy/container_test.py): the image's contents and size, the
# development default, health, drain on stop, the Kubernetes pod via `podman kube play`, and the
# compose stack. Any failure fails the run.
#
#   bash tests/deploy/run.sh [--only NAME ...]     (as root; installs what it needs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bash scripts/install-deps.sh --containers

# podman as this machine needs it, in a file of the test's own (the system's configuration is
# left alone): runc (crun: "cgroups in hybrid mode not supported"), cgroupfs (no systemd), no
# default ulimits (podman's default nofile exceeds this machine's hard limit), netavark.
mkdir -p tests/deploy/.cache
if [ -z "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="$PWD/tests/deploy/.cache/containers.conf"
  mkdir -p "$(dirname "$CONTAINERS_CONF")"
  cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
[network]
network_backend = "netavark"
CONF
fi

echo "deploy: Kubernetes manifests against the API schemas (offline)"
bash tests/deploy/validate_manifests.sh

echo "deploy: the base image (debian:bookworm) in podman's store"
bash tests/deploy/base_image.sh

image=localhost/jwtgate:ci
version=$(sed -n 's/^project(jwtgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
echo "deploy: podman build --format docker -f deploy/Dockerfile ($version, $revision)"
start=$(date +%s)
podman build --format docker -f deploy/Dockerfile -t "$image" \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" . > tests/deploy/.cache/build.log 2>&1 || {
  tail -60 tests/deploy/.cache/build.log >&2
  exit 1
}
echo "deploy: image built in $(( $(date +%s) - start )) s"

# podman logs a harmless error for every container with a HEALTHCHECK when systemd (which it
# would use to schedule the checks) is not running; the test runs the checks itself.
/usr/bin/python3 tests/deploy/container_test.py --image "$image" "$@" 2> >(grep -v 'unable to get systemd connection' >&2)
