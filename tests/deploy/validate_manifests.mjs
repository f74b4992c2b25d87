// Offline validation of deploy/kubernetes/: every object kubectl apply -k would apply (and the
// secret.example.yaml kept out of it) against the Kubernetes OpenAPI schemas, strictly (unknown
// fields are errors, as `kubectl apply --validate=strict` makes them), plus the deployment
// invariants issue 14 names, so a later edit cannot silently weaken them.
//
//   node tests/deploy/validate_manifests.mjs [--dir DIR]     (DIR defaults to deploy/kubernetes)
//
// Exit 0 when everything holds, 1 with one `FAIL file: message` line per problem, 2 on bad usage.

import { readFileSync, existsSync, statSync } from "node:fs";
import { dirname, join, resolve, isAbsolute, normalize, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseAllDocuments, parse as parseYaml } from "yaml";

import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";

// The generated schema validators the classes above call; the package does not export them, so
// they are loaded from its directory (the same files the classes import).
const schemasDir = join(dirname(fileURLToPath(import.meta.resolve("kubernetes-models"))), "_schemas");
async function schema(name) {
  return (await import(pathToFileURL(join(schemasDir, `${name}.mjs`)).href)).validate;
}
const configMapSchema = await schema("IoK8sApiCoreV1ConfigMap");
const secretSchema = await schema("IoK8sApiCoreV1Secret");
const serviceSchema = await schema("IoK8sApiCoreV1Service");
const deploymentSchema = await schema("IoK8sApiAppsV1Deployment");
const networkPolicySchema = await schema("IoK8sApiNetworkingV1NetworkPolicy");

// Only the kinds this directory uses; a new kind must be added here, so nothing goes unvalidated.
const KINDS = {
  "v1/ConfigMap": { Model: ConfigMap, schema: configMapSchema },
  "v1/Secret": { Model: Secret, schema: secretSchema },
  "v1/Service": { Model: Service, schema: serviceSchema },
  "apps/v1/Deployment": { Model: Deployment, schema: deploymentSchema },
  "networking.k8s.io/v1/NetworkPolicy": { Model: NetworkPolicy, schema: networkPolicySchema },
};

const JWTGATE_CONTAINER = "jwtgate";
const CONFIG_MOUNT = "/etc/jwtgate";
const CONFIG_FILE = "/etc/jwtgate/jwtgate.yaml";
const CACHE_MOUNT = "/var/lib/jwtgate";
const UID = 65532;
// kube-proxy, ingress controllers and load balancers keep sending new connections for a few
// seconds after a pod starts terminating; the grace period must cover that beside the drain.
const ENDPOINT_REMOVAL_SECONDS = 5;

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");

const failures = [];
function fail(file, message) {
  failures.push(`FAIL ${file}: ${message}`);
}

function finish(note) {
  if (failures.length) {
    process.stderr.write(failures.join("\n") + `\n${failures.length} problem(s) in ${rel(dir)}${note ? `; ${note}` : ""}\n`);
    process.exit(1);
  }
  process.stdout.write(`${rel(dir)}: ${applied.length} applied objects and ${secretExamples.length} example Secret valid against the Kubernetes schemas (strict) and the deployment invariants\n`);
  process.exit(0);
}

function usage(message) {
  process.stderr.write(`${message}\nusage: node validate_manifests.mjs [--dir DIR]\n`);
  process.exit(2);
}

let dir = join(repo, "deploy", "kubernetes");
{
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === "--dir" && i + 1 < args.length) dir = resolve(args[++i]);
    else usage(`unknown argument: ${args[i]}`);
  }
}
const rel = (file) => file.startsWith(repo + sep) ? file.slice(repo.length + 1) : file;

// kubectl reads manifests with go-yaml (YAML 1.1: `0440` is octal, `yes` a boolean); read them
// the same way so the objects checked are the objects applied.
function loadDocuments(file) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    fail(rel(file), `cannot read: ${e.message}`);
    return [];
  }
  const docs = parseAllDocuments(text, { version: "1.1", uniqueKeys: true });
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      for (const e of doc.errors) fail(rel(file), `YAML: ${e.message}`);
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 0 });
    if (obj === null || obj === undefined) continue;
    objects.push({ file: rel(file), obj });
  }
  return objects;
}

// The generated validators check each known property by reading it and ignore the rest (the
// OpenAPI schemas do not say additionalProperties: false). Wrapping every object in a Proxy that
// records reads shows which keys the schema knows: a key never read is an unknown field, exactly
// what the API server's strict field validation refuses. Maps (labels, data, resources) are read
// key by key by their additionalProperties check, so they are not reported.
function track(value, path, seen) {
  if (Array.isArray(value)) return value.map((v, i) => track(v, `${path}/${i}`, seen));
  if (value !== null && typeof value === "object") {
    const read = new Set();
    seen.push({ path, keys: Object.keys(value), read });
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = track(v, `${path}/${k}`, seen);
    return new Proxy(copy, {
      get(target, key, receiver) {
        if (typeof key === "string") read.add(key);
        return Reflect.get(target, key, receiver);
      },
    });
  }
  return value;
}

function schemaErrors(errors) {
  return (errors || []).map((e) => `${e.instancePath || "/"} ${e.message}${e.params && e.params.allowedValues ? ` (${e.params.allowedValues.join(", ")})` : ""}`);
}

function validateObject({ file, obj }) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    fail(file, "a document that is not a mapping");
    return false;
  }
  const key = `${obj.apiVersion}/${obj.kind}`;
  const entry = KINDS[key];
  if (!entry) {
    fail(file, `unknown kind ${JSON.stringify(key)}: add its kubernetes-models class to KINDS in tests/deploy/validate_manifests.mjs`);
    return false;
  }
  const name = obj.metadata && obj.metadata.name;
  const where = `${obj.kind} ${name ?? "(unnamed)"}`;
  let ok = true;
  try {
    new entry.Model(obj).validate();
  } catch (e) {
    const details = schemaErrors(e.errors);
    fail(file, `${where}: schema: ${details.length ? details.join("; ") : e.message}`);
    ok = false;
  }
  // The generated validators collect every error (allErrors), so every known key is read even when
  // some value is wrong: unknown fields are reported either way. Below an unknown key everything
  // is unknown too; only the outermost one is named.
  const seen = [];
  const schemaOk = entry.schema(track(obj, "", seen));
  if (!schemaOk && ok) fail(file, `${where}: schema: ${schemaErrors(entry.schema.errors).join("; ")}`);
  if (!schemaOk) ok = false;
  const unknown = [];
  for (const { path, keys, read } of seen) for (const k of keys) if (!read.has(k)) unknown.push(`${path}/${k}`);
  for (const u of unknown) {
    if (unknown.some((other) => u.startsWith(other + "/"))) continue;
    fail(file, `${where}: unknown field ${u} (a typo, or a field this Kubernetes API version does not have)`);
    ok = false;
  }
  if (typeof name !== "string" || name === "") {
    fail(file, `${obj.kind}: metadata.name is required`);
    ok = false;
  }
  return ok;
}

// --- kustomization.yaml: the applied set -------------------------------------------------------

const kustomizationFile = join(dir, "kustomization.yaml");
const resources = [];
{
  const docs = loadDocuments(kustomizationFile);
  const k = docs.length === 1 ? docs[0].obj : null;
  if (!k || typeof k !== "object") {
    fail(rel(kustomizationFile), "must hold exactly one mapping");
  } else {
    // Any other key (images, patches, generators, namePrefix, ...) would change what kubectl
    // applies without this loader seeing it; put such things in an overlay.
    for (const key of Object.keys(k)) {
      if (!["apiVersion", "kind", "resources"].includes(key)) {
        fail(rel(kustomizationFile), `key ${JSON.stringify(key)} is not allowed: only apiVersion, kind and resources, so the validated objects are the applied ones (put ${key} in an overlay)`);
      }
    }
    if (k.apiVersion !== "kustomize.config.k8s.io/v1beta1") fail(rel(kustomizationFile), `apiVersion must be kustomize.config.k8s.io/v1beta1, not ${JSON.stringify(k.apiVersion)}`);
    if (k.kind !== "Kustomization") fail(rel(kustomizationFile), `kind must be Kustomization, not ${JSON.stringify(k.kind)}`);
    if (!Array.isArray(k.resources) || k.resources.length === 0) {
      fail(rel(kustomizationFile), "resources must be a non-empty list of files");
    } else {
      for (const r of k.resources) {
        const path = typeof r === "string" ? normalize(r) : "";
        if (!path || isAbsolute(path) || path.startsWith("..") || path.includes("://")) {
          fail(rel(kustomizationFile), `resource ${JSON.stringify(r)}: only files in this directory`);
          continue;
        }
        const file = join(dir, path);
        if (!existsSync(file) || !statSync(file).isFile()) {
          fail(rel(kustomizationFile), `resource ${JSON.stringify(r)} is not a file here`);
          continue;
        }
        if (path === "secret.example.yaml") fail(rel(kustomizationFile), "secret.example.yaml holds placeholder secret data and must not be applied");
        resources.push(...loadDocuments(file));
      }
    }
  }
}

const applied = resources.filter(validateObject);
const secretExampleFile = join(dir, "secret.example.yaml");
const secretExamples = loadDocuments(secretExampleFile).filter(validateObject);
// The invariants read the objects' fields; on objects the schema refused they would only add
// confusing follow-up errors.
if (failures.length) finish("the deployment invariants are checked once these are fixed");

// --- invariants ---------------------------------------------------------------------------------

const byKind = (kind) => applied.filter(({ obj }) => obj.kind === kind);
function one(kind) {
  const found = byKind(kind);
  if (found.length !== 1) {
    fail(rel(kustomizationFile), `expected exactly one ${kind} among the resources, found ${found.length}`);
    return null;
  }
  return found[0];
}
{
  const names = new Set();
  for (const { file, obj } of applied) {
    const id = `${obj.kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
    if (names.has(id)) fail(file, `${obj.kind} ${obj.metadata.name} is defined twice`);
    names.add(id);
  }
}

function parseDuration(text) {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(String(text));
  if (!m) return null;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
}
function portOf(address) {
  const m = /:(\d+)$/.exec(String(address ?? ""));
  return m ? Number(m[1]) : null;
}
function isLoopback(address) {
  return /^(127\.|\[::1\]:|localhost:)/.test(String(address ?? ""));
}
function labelsMatch(selector, labels) {
  return selector && Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => labels && labels[k] === v);
}

const deployment = one("Deployment");
const service = one("Service");
const networkPolicy = one("NetworkPolicy");
const configMaps = byKind("ConfigMap");

let config = null;          // jwtgate.yaml, parsed
let configFile = null;
let ports = null;           // jwtgate's named container ports
let appPort = null;

if (deployment) {
  const { file, obj } = deployment;
  const pod = obj.spec.template.spec ?? {};
  const podMeta = obj.spec.template.metadata ?? {};
  const podLabels = podMeta.labels ?? {};
  const init = pod.initContainers ?? [];
  const main = pod.containers ?? [];
  const sidecar = init.find((c) => c.name === JWTGATE_CONTAINER);

  if (!labelsMatch(obj.spec.selector.matchLabels, podLabels)) fail(file, "spec.selector.matchLabels must select the pod template's labels");

  // Native sidecar form: started before the app, restarted on its own, stopped after it.
  if (!sidecar) fail(file, `spec.template.spec.initContainers must hold the ${JWTGATE_CONTAINER} container (native sidecar, Kubernetes >= 1.29)`);
  else if (sidecar.restartPolicy !== "Always") fail(file, `initContainers ${JWTGATE_CONTAINER}: restartPolicy must be Always (without it, it is an init step that blocks the app forever)`);
  if (main.some((c) => c.name === JWTGATE_CONTAINER)) fail(file, `${JWTGATE_CONTAINER} must not also be in containers`);
  if (main.length === 0) fail(file, "containers must hold the app");

  // Restricted Pod Security Standard, pod level.
  const psc = pod.securityContext ?? {};
  if (psc.runAsNonRoot !== true) fail(file, "pod securityContext.runAsNonRoot must be true");
  for (const k of ["runAsUser", "runAsGroup", "fsGroup"]) if (psc[k] !== UID) fail(file, `pod securityContext.${k} must be ${UID} (the image's user), not ${JSON.stringify(psc[k])}`);
  if (psc.seccompProfile?.type !== "RuntimeDefault") fail(file, "pod securityContext.seccompProfile.type must be RuntimeDefault");

  // Every container, the app's too: the restricted profile refuses the pod otherwise.
  for (const c of [...init, ...main]) {
    const sc = c.securityContext ?? {};
    const what = `container ${c.name}: securityContext`;
    if (sc.allowPrivilegeEscalation !== false) fail(file, `${what}.allowPrivilegeEscalation must be false`);
    if (sc.privileged === true) fail(file, `${what}.privileged must not be true`);
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) fail(file, `${what}.capabilities.drop must include ALL`);
    if ((sc.capabilities?.add ?? []).length) fail(file, `${what}.capabilities.add must be empty`);
    if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) fail(file, `${what}.runAsNonRoot must be true (here or on the pod)`);
    if (sc.runAsUser === 0) fail(file, `${what}.runAsUser must not be 0`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") fail(file, `${what}.seccompProfile must be RuntimeDefault (here or on the pod)`);
  }

  if (sidecar) {
    const sc = sidecar.securityContext ?? {};
    const what = `container ${JWTGATE_CONTAINER}: securityContext`;
    if (sc.runAsNonRoot !== true) fail(file, `${what}.runAsNonRoot must be true`);
    for (const k of ["runAsUser", "runAsGroup"]) if (sc[k] !== UID) fail(file, `${what}.${k} must be ${UID}, not ${JSON.stringify(sc[k])}`);
    if (sc.readOnlyRootFilesystem !== true) fail(file, `${what}.readOnlyRootFilesystem must be true`);
    if (sc.seccompProfile?.type !== "RuntimeDefault") fail(file, `${what}.seccompProfile.type must be RuntimeDefault`);

    if (typeof sidecar.image !== "string" || !sidecar.image) fail(file, `container ${JWTGATE_CONTAINER}: image is required`);
    if (JSON.stringify(sidecar.args) !== JSON.stringify(["--config", CONFIG_FILE])) fail(file, `container ${JWTGATE_CONTAINER}: args must be ["--config", "${CONFIG_FILE}"], not ${JSON.stringify(sidecar.args)}`);
    if (sidecar.command) fail(file, `container ${JWTGATE_CONTAINER}: no command (the image's ENTRYPOINT is jwtgate)`);

    ports = Object.fromEntries((sidecar.ports ?? []).filter((p) => p.name).map((p) => [p.name, p.containerPort]));
    if (ports.http !== 8080) fail(file, `container ${JWTGATE_CONTAINER}: port "http" must be containerPort 8080, not ${JSON.stringify(ports.http)}`);
    if (ports.admin !== 9901) fail(file, `container ${JWTGATE_CONTAINER}: port "admin" must be containerPort 9901, not ${JSON.stringify(ports.admin)}`);

    const resolvePort = (p) => (typeof p === "string" ? ports[p] : p);
    for (const [probe, path] of [["startupProbe", "/readyz"], ["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
      const p = sidecar[probe];
      if (!p) { fail(file, `container ${JWTGATE_CONTAINER}: ${probe} is required`); continue; }
      if (!p.httpGet) { fail(file, `container ${JWTGATE_CONTAINER}: ${probe} must be an httpGet probe`); continue; }
      if (p.httpGet.path !== path) fail(file, `container ${JWTGATE_CONTAINER}: ${probe} must GET ${path}, not ${JSON.stringify(p.httpGet.path)}`);
      if (resolvePort(p.httpGet.port) !== ports.admin || ports.admin === undefined) fail(file, `container ${JWTGATE_CONTAINER}: ${probe} must use the admin port, not ${JSON.stringify(p.httpGet.port)}`);
      if (p.httpGet.scheme && p.httpGet.scheme !== "HTTP") fail(file, `container ${JWTGATE_CONTAINER}: ${probe} scheme must be HTTP`);
    }

    const res = sidecar.resources ?? {};
    if (!res.requests?.cpu || !res.requests?.memory) fail(file, `container ${JWTGATE_CONTAINER}: resources.requests cpu and memory are required`);
    if (!res.limits?.memory) fail(file, `container ${JWTGATE_CONTAINER}: resources.limits.memory is required`);

    // Volumes: the ConfigMap as a directory, the Secret optional and private, an emptyDir cache.
    const volumes = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
    const mounts = sidecar.volumeMounts ?? [];
    for (const m of mounts) {
      const v = volumes[m.name];
      if (!v) { fail(file, `container ${JWTGATE_CONTAINER}: volumeMount ${m.name} names no volume`); continue; }
      if ((v.configMap || v.secret || v.projected) && (m.subPath || m.subPathExpr)) {
        fail(file, `container ${JWTGATE_CONTAINER}: volumeMount ${m.name} uses subPath; a subPath mount never receives ConfigMap or Secret updates, mount the directory`);
      }
    }
    const configMount = mounts.find((m) => m.mountPath === CONFIG_MOUNT);
    const configVolume = configMount && volumes[configMount.name];
    if (!configVolume?.configMap) {
      fail(file, `container ${JWTGATE_CONTAINER}: ${CONFIG_MOUNT} must be a configMap volume mounted as a directory`);
    } else {
      if (configMount.readOnly !== true) fail(file, `container ${JWTGATE_CONTAINER}: the ${CONFIG_MOUNT} mount must be readOnly`);
      const items = configVolume.configMap.items;
      if (items && !items.some((i) => i.key === "jwtgate.yaml" && i.path === "jwtgate.yaml")) fail(file, `volume ${configMount.name}: items must map jwtgate.yaml to jwtgate.yaml`);
      const cm = configMaps.find(({ obj: o }) => o.metadata.name === configVolume.configMap.name);
      if (!cm) {
        fail(file, `volume ${configMount.name}: ConfigMap ${JSON.stringify(configVolume.configMap.name)} is not among the resources`);
      } else if (typeof cm.obj.data?.["jwtgate.yaml"] !== "string") {
        fail(cm.file, `ConfigMap ${cm.obj.metadata.name}: data must hold jwtgate.yaml`);
      } else {
        configFile = cm.file;
        try {
          config = parseYaml(cm.obj.data["jwtgate.yaml"], { uniqueKeys: true });
        } catch (e) {
          fail(cm.file, `jwtgate.yaml: YAML: ${e.message}`);
        }
      }
    }
    const cacheMount = mounts.find((m) => m.mountPath === CACHE_MOUNT);
    if (!cacheMount || !volumes[cacheMount.name]?.emptyDir) fail(file, `container ${JWTGATE_CONTAINER}: ${CACHE_MOUNT} must be an emptyDir volume (the cache_file; the root filesystem is read-only)`);
    for (const m of mounts) {
      const v = volumes[m.name];
      if (!v?.secret) continue;
      if (v.secret.optional !== true) fail(file, `volume ${m.name}: the Secret must be optional: true (it is not part of kubectl apply -k)`);
      const mode = v.secret.defaultMode;
      if (mode === undefined || (mode & 0o007) !== 0) fail(file, `volume ${m.name}: defaultMode must give others no access (0440 or 0400; Kubernetes' default is 0644), not ${mode === undefined ? "unset" : "0" + mode.toString(8)}`);
      if (m.mountPath === CONFIG_MOUNT || m.mountPath.startsWith(CONFIG_MOUNT + "/")) fail(file, `volume ${m.name}: do not mount inside the ConfigMap directory ${CONFIG_MOUNT}`);
      if (!secretExamples.some(({ obj: s }) => s.metadata.name === v.secret.secretName)) fail(file, `volume ${m.name}: Secret ${JSON.stringify(v.secret.secretName)} is not the one secret.example.yaml describes`);
    }
  }

  // Prometheus finds the admin port through the pod's annotations.
  const a = podMeta.annotations ?? {};
  if (a["prometheus.io/scrape"] !== "true") fail(file, 'pod template annotation prometheus.io/scrape must be "true"');
  if (a["prometheus.io/port"] !== String(ports?.admin ?? 9901)) fail(file, `pod template annotation prometheus.io/port must be the admin port "${ports?.admin ?? 9901}", not ${JSON.stringify(a["prometheus.io/port"])}`);
  if (a["prometheus.io/path"] !== "/metrics") fail(file, "pod template annotation prometheus.io/path must be /metrics");

  // jwtgate's configuration, as the sidecar reads it.
  if (config !== null && typeof config === "object") {
    if (portOf(config.listen) !== ports?.http) fail(configFile, `jwtgate.yaml: listen ${JSON.stringify(config.listen)} must use the "http" containerPort ${ports?.http}`);
    if (isLoopback(config.listen)) fail(configFile, "jwtgate.yaml: listen must not be loopback (the Service reaches the pod IP)");
    const admin = config.admin ?? {};
    const adminListen = admin.listen ?? config.admin_listen;
    if (portOf(adminListen) !== ports?.admin) fail(configFile, `jwtgate.yaml: admin.listen ${JSON.stringify(adminListen)} must use the "admin" containerPort ${ports?.admin}`);
    if (isLoopback(adminListen)) fail(configFile, "jwtgate.yaml: admin.listen must not be loopback (the kubelet probes the pod IP)");
    if (admin.config_endpoint !== false) fail(configFile, "jwtgate.yaml: admin.config_endpoint must be false (the admin port is reachable from the pod network)");
    const upstream = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):(\d+)(\/|$)/.exec(String(config.upstream ?? ""));
    if (!upstream) fail(configFile, `jwtgate.yaml: upstream must be the app on loopback in the same pod, not ${JSON.stringify(config.upstream)}`);
    else appPort = Number(upstream[2]);
    for (const p of config.providers ?? []) {
      const cache = p?.jwks?.cache_file;
      if (cache !== undefined && !String(cache).startsWith(CACHE_MOUNT + "/")) fail(configFile, `jwtgate.yaml: provider ${p.name}: cache_file must be under ${CACHE_MOUNT}/ (the emptyDir; the root filesystem is read-only)`);
    }
    const drainText = config.limits?.drain_timeout;
    const drain = parseDuration(drainText);
    const grace = obj.spec.template.spec.terminationGracePeriodSeconds;
    if (drainText === undefined) fail(configFile, "jwtgate.yaml: set limits.drain_timeout explicitly, so the grace period can be checked against it");
    else if (drain === null) fail(configFile, `jwtgate.yaml: limits.drain_timeout ${JSON.stringify(drainText)} is not a duration`);
    else if (typeof grace !== "number" || grace < drain + ENDPOINT_REMOVAL_SECONDS) {
      fail(file, `terminationGracePeriodSeconds (${grace ?? "unset: 30"}) must be at least limits.drain_timeout (${drainText}) + ${ENDPOINT_REMOVAL_SECONDS}s for endpoint removal, or the kubelet kills jwtgate mid-drain`);
    }
  } else if (configFile) {
    fail(configFile, "jwtgate.yaml must be a mapping");
  }

  // The app is reached only through jwtgate: it publishes no port.
  for (const c of main) {
    for (const p of c.ports ?? []) {
      if (p.containerPort === appPort || p.hostPort) fail(file, `container ${c.name}: must not publish port ${p.containerPort}${p.hostPort ? ` (hostPort ${p.hostPort})` : ""}; only jwtgate is reachable`);
    }
  }
  if (pod.hostNetwork) fail(file, "hostNetwork would expose the app's loopback port on the node");
}

if (service && deployment) {
  const { file, obj } = service;
  if ((obj.spec.type ?? "ClusterIP") !== "ClusterIP") fail(file, `Service type must be ClusterIP, not ${obj.spec.type}`);
  if (!labelsMatch(obj.spec.selector, deployment.obj.spec.template.metadata?.labels)) fail(file, "Service selector must select the Deployment's pods");
  for (const p of obj.spec.ports ?? []) {
    const target = p.targetPort ?? p.port;
    const resolved = typeof target === "string" ? ports?.[target] : target;
    if (resolved === appPort) fail(file, `Service port ${p.name ?? p.port}: targetPort ${JSON.stringify(target)} is the app's port; only jwtgate may be exposed`);
    else if (resolved === ports?.admin) fail(file, `Service port ${p.name ?? p.port}: targetPort ${JSON.stringify(target)} is jwtgate's admin port; keep /metrics and /readyz out of the Service`);
    else if (resolved !== ports?.http || ports?.http === undefined) fail(file, `Service port ${p.name ?? p.port}: targetPort ${JSON.stringify(target)} must be jwtgate's http port (${ports?.http})`);
  }
}

if (networkPolicy && deployment) {
  const { file, obj } = networkPolicy;
  const spec = obj.spec;
  if (!labelsMatch(spec.podSelector?.matchLabels, deployment.obj.spec.template.metadata?.labels)) fail(file, "podSelector must select the Deployment's pods");
  if (JSON.stringify(spec.policyTypes) !== JSON.stringify(["Ingress"])) fail(file, `policyTypes must be [Ingress], not ${JSON.stringify(spec.policyTypes)}`);
  const resolvePort = (p) => (typeof p === "string" ? ports?.[p] : p);
  const open = new Map();   // port -> list of rules admitting it
  for (const [i, rule] of (spec.ingress ?? []).entries()) {
    if (!rule.ports || rule.ports.length === 0) { fail(file, `ingress[${i}] has no ports: it admits every port, the app's too`); continue; }
    for (const p of rule.ports) {
      if (p.endPort) fail(file, `ingress[${i}]: no port ranges`);
      if ((p.protocol ?? "TCP") !== "TCP") fail(file, `ingress[${i}]: only TCP`);
      const port = resolvePort(p.port);
      if (!open.has(port)) open.set(port, []);
      open.get(port).push(rule);
    }
  }
  for (const port of open.keys()) {
    if (port !== ports?.http && port !== ports?.admin) fail(file, `port ${port} is admitted; only jwtgate's http (${ports?.http}) and admin (${ports?.admin}) ports may be`);
  }
  if (!open.has(ports?.http)) fail(file, `jwtgate's http port ${ports?.http} must be admitted`);
  for (const rule of open.get(ports?.admin) ?? []) {
    const from = rule.from ?? [];
    const restricted = from.length > 0 && from.every((peer) =>
      !peer.ipBlock && peer.namespaceSelector && Object.keys(peer.namespaceSelector.matchLabels ?? {}).length > 0);
    if (!restricted) fail(file, `the admin port ${ports?.admin} must be admitted only from a labelled namespace (namespaceSelector.matchLabels), not ${JSON.stringify(rule.from ?? "anywhere")}`);
  }
}

if (secretExamples.length !== 1 || secretExamples[0].obj.kind !== "Secret") fail(rel(secretExampleFile), "must hold exactly one Secret");

finish();
