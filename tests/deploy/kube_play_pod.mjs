// Turns deploy/kubernetes/ into what `podman kube play` can run: the Deployment's pod template as
// a Pod in the plain-container form that deploy/kubernetes/README.md documents for clusters
// before 1.29, preceded by the ConfigMap. podman ignores restartPolicy on init containers and
// refuses init containers with probes, so the native sidecar cannot be played as written; the
// transformation is the README's diff, nothing more, so the pod that runs is the manifest's.
//
//   node tests/deploy/kube_play_pod.mjs [--dir DIR] [--image NAME=REF]... [--app-args JSON]
//        [--config-host-path DIR] > pod.yaml
//
// --image NAME=REF       replace the image NAME (as written in the manifest) with REF
// --app-args JSON        args for the app container, e.g. '["echo","--listen","127.0.0.1:3000"]'
// --config-host-path DIR mount DIR at /etc/jwtgate instead of the ConfigMap, so a test can
//                        rewrite it the way the kubelet does (a `..data` symlink swap)
// --exec-probes          turn httpGet probes into exec probes running `jwtgate health --url ...`
//                        on the same path and port (podman runs httpGet probes as a command
//                        inside the container, and jwtgate's image has no curl or shell)
// Optional Secret volumes are left out (podman would look for a podman secret of that name).

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
let dir = resolve(here, "..", "..", "deploy", "kubernetes");
const images = new Map();
let appArgs = null;
let configHostPath = null;
let execProbes = false;

function usage(message) {
  process.stderr.write(`${message}\nusage: node kube_play_pod.mjs [--dir DIR] [--image NAME=REF]... [--app-args JSON] [--config-host-path DIR] [--exec-probes]\n`);
  process.exit(2);
}
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; ++i) {
    const value = () => (i + 1 < args.length ? args[++i] : usage(`${args[i]} needs a value`));
    if (args[i] === "--dir") dir = resolve(value());
    else if (args[i] === "--image") {
      const m = /^([^=]+)=(.+)$/.exec(value());
      if (!m) usage("--image takes NAME=REF");
      images.set(m[1], m[2]);
    } else if (args[i] === "--app-args") {
      try { appArgs = JSON.parse(value()); } catch { usage("--app-args takes a JSON array of strings"); }
      if (!Array.isArray(appArgs) || !appArgs.every((a) => typeof a === "string")) usage("--app-args takes a JSON array of strings");
    } else if (args[i] === "--config-host-path") configHostPath = resolve(value());
    else if (args[i] === "--exec-probes") execProbes = true;
    else usage(`unknown argument: ${args[i]}`);
  }
}

// Read as kubectl does (YAML 1.1), from exactly the files kustomization.yaml lists.
const load = (file) => parseAllDocuments(readFileSync(file, "utf8"), { version: "1.1" }).map((d) => d.toJS()).filter(Boolean);
const kustomization = load(join(dir, "kustomization.yaml"))[0];
const objects = kustomization.resources.flatMap((r) => load(join(dir, r)));
const deployment = objects.find((o) => o.kind === "Deployment");
if (!deployment) usage(`no Deployment in ${dir}`);

const template = structuredClone(deployment.spec.template);
const spec = template.spec;
const image = (ref) => images.get(ref) ?? images.get(ref.replace(/:[^/:]+$/, "")) ?? ref;

// The README's pre-1.29 diff: native sidecars become ordinary containers, listed first.
const sidecars = (spec.initContainers ?? []).filter((c) => c.restartPolicy === "Always");
spec.initContainers = (spec.initContainers ?? []).filter((c) => c.restartPolicy !== "Always");
if (spec.initContainers.length === 0) delete spec.initContainers;
for (const c of sidecars) delete c.restartPolicy;
spec.containers = [...sidecars, ...spec.containers];

for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) c.image = image(c.image);
if (appArgs) {
  const app = spec.containers.find((c) => c.name === "app");
  if (!app) usage("no container named app");
  app.args = appArgs;
}

if (execProbes) {
  for (const c of spec.containers) {
    const named = Object.fromEntries((c.ports ?? []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const get = c[probe]?.httpGet;
      if (!get) continue;
      const port = typeof get.port === "string" ? named[get.port] : get.port;
      c[probe].exec = { command: ["/usr/local/bin/jwtgate", "health", "--url", `http://127.0.0.1:${port}${get.path ?? "/"}`] };
      delete c[probe].httpGet;
    }
  }
}

const dropped = new Set((spec.volumes ?? []).filter((v) => v.secret?.optional).map((v) => v.name));
spec.volumes = (spec.volumes ?? []).filter((v) => !dropped.has(v.name));
for (const c of spec.containers) c.volumeMounts = (c.volumeMounts ?? []).filter((m) => !dropped.has(m.name));

const out = [];
if (configHostPath) {
  for (const v of spec.volumes) {
    if (v.configMap) {
      delete v.configMap;
      v.hostPath = { path: configHostPath, type: "Directory" };
    }
  }
} else {
  const names = new Set(spec.volumes.filter((v) => v.configMap).map((v) => v.configMap.name));
  out.push(...objects.filter((o) => o.kind === "ConfigMap" && names.has(o.metadata.name)));
}

out.push({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: deployment.metadata.name, labels: template.metadata?.labels, annotations: template.metadata?.annotations },
  spec,
});
process.stdout.write(out.map((o) => stringify(o)).join("---\n"));
