#!/usr/bin/env bash
# Validates deploy/kubernetes/ offline (tests/deploy/validate_manifests.mjs), then proves the
# validator can fail: each broken copy below must be refused with the expected message.
# Needs Node.js >= 20 and the npm registry (npm ci); no cluster, no kubectl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
manifests="$repo/deploy/kubernetes"

npm ci --prefix "$here" --no-audit --no-fund --loglevel=error >/dev/null

node "$here/validate_manifests.mjs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
# broken NAME FILE EXPECTED SED-SCRIPT [EXTRA-FILE CONTENT]: copy the manifests, apply SED-SCRIPT
# to FILE (and add EXTRA-FILE), and require the validator to exit 1 with EXPECTED (a fixed
# string) in its output.
broken() {
  local name=$1 file=$2 expected=$3 script=$4
  local dir="$work/$name"
  cp -r "$manifests" "$dir"
  sed -i -e "$script" "$dir/$file"
  if [[ $# -ge 6 ]]; then printf '%s' "$6" >"$dir/$5"; fi
  if cmp -s "$manifests/$file" "$dir/$file"; then
    echo "broken manifest $name: the edit did not apply to $file (update the sed script)" >&2
    failed=1
    return
  fi
  local out rc=0
  out=$(node "$here/validate_manifests.mjs" --dir "$dir" 2>&1) || rc=$?
  if [[ $rc -ne 1 ]] || ! grep -qF -- "$expected" <<<"$out"; then
    echo "broken manifest $name: expected exit 1 and \"$expected\", got exit $rc:" >&2
    echo "$out" >&2
    failed=1
  else
    echo "broken manifest $name: refused ($(grep -F -- "$expected" <<<"$out" | head -n 1))"
  fi
}

broken typo-field deployment.yaml 'unknown field /spec/template/spec/initContainers/0/readinesProbe' \
  's/^          readinessProbe:/          readinesProbe:/'
broken wrong-type deployment.yaml 'containerPort must be integer' \
  's/containerPort: 8080/containerPort: "8080"/'
broken typo-nested deployment.yaml 'unknown field /spec/template/spec/volumes/1/secret/optinal' \
  's/optional: true /optinal: true /'
broken bad-enum service.yaml 'type must be equal to one of the allowed values' \
  's/type: ClusterIP/type: ClusterIp/'
broken not-native-sidecar deployment.yaml 'restartPolicy must be Always' \
  '/restartPolicy: Always/d'
broken service-to-app service.yaml "is the app's port" \
  's/targetPort: http /targetPort: 3000 /'
broken service-to-admin service.yaml "jwtgate's admin port" \
  's/targetPort: http /targetPort: admin /'
broken subpath-mount deployment.yaml 'uses subPath' \
  's|^              mountPath: /etc/jwtgate$|              mountPath: /etc/jwtgate\n              subPath: jwtgate.yaml|'
broken short-grace deployment.yaml 'terminationGracePeriodSeconds (20) must be at least limits.drain_timeout (20s)' \
  's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 20/'
broken long-drain configmap.yaml 'must be at least limits.drain_timeout (1m)' \
  's/drain_timeout: 20s/drain_timeout: 1m/'
broken writable-root deployment.yaml 'readOnlyRootFilesystem must be true' \
  's/readOnlyRootFilesystem: true    # jwtgate/readOnlyRootFilesystem: false   # jwtgate/'
broken escalation deployment.yaml 'container app: securityContext.allowPrivilegeEscalation must be false' \
  '0,/allowPrivilegeEscalation: false/! s/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/'
broken liveness-on-readyz deployment.yaml 'livenessProbe must GET /healthz' \
  '/livenessProbe:/,/httpGet/ s|path: /healthz|path: /readyz|'
broken probe-traffic-port deployment.yaml 'readinessProbe must use the admin port' \
  '/readinessProbe:/,/httpGet/ s|port: admin|port: http|'
broken admin-open networkpolicy.yaml 'must be admitted only from a labelled namespace' \
  '/- namespaceSelector:/,/kubernetes.io\/metadata.name/c\        - namespaceSelector: {}'
broken config-endpoint configmap.yaml 'admin.config_endpoint must be false' \
  's/config_endpoint: false/config_endpoint: true /'
broken secret-world-readable deployment.yaml 'defaultMode must give others no access' \
  's/defaultMode: 288 /defaultMode: 420 /'
broken no-scrape deployment.yaml 'prometheus.io/scrape must be "true"' \
  's|prometheus.io/scrape: "true"|prometheus.io/scrape: "false"|'
broken cache-off-emptydir configmap.yaml 'cache_file must be under /var/lib/jwtgate/' \
  's|cache_file: /var/lib/jwtgate/|cache_file: /tmp/|'
broken kustomize-images kustomization.yaml 'key "images" is not allowed' \
  '$ a images: [{name: jwtgate, newTag: "1.0"}]'
broken unknown-kind kustomization.yaml 'unknown kind "v1/ServiceAccount"' \
  's/  - networkpolicy.yaml/  - networkpolicy.yaml\n  - serviceaccount.yaml/' \
  serviceaccount.yaml $'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: legacy-app}\n'
broken secret-applied kustomization.yaml 'secret.example.yaml holds placeholder secret data' \
  's/  - networkpolicy.yaml/  - networkpolicy.yaml\n  - secret.example.yaml/'

exit $failed
