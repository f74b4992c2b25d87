#!/usr/bin/python3
"""Runs the jwtgate image for real with podman: the image itself, the development default in a
container, a container on a mounted config, the Kubernetes pod (the manifest's own pod spec run
by `podman kube play`), and the compose stack. The oracle is always what a real client and the
real upstream inside the pod or stack saw.

Usage: container_test.py --image localhost/jwtgate:ci [--only NAME ...] [--keep]
Needs podman configured as tests/deploy/run.sh does it (CONTAINERS_CONF).
"""
import argparse
import base64
import copy
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback

import jwt  # python3-jwt
import yaml  # python3-yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from ports import free_port  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAX_IMAGE_BYTES = 25 * 1024 * 1024
UID = 65532

facts = {}  # measured numbers, printed at the end (and quoted in the closing note)


# --- plumbing --------------------------------------------------------------------------------

def podman(*args, check=True, timeout=120, input=None):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r


def request(host, port, path, headers=None, method="GET", body=None, timeout=5):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def eventually(what, fn, timeout=30.0, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - a probe that is not there yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")


def echo_view(body):
    """The built-in echo's JSON: what the upstream received."""
    return json.loads(body)


def header(view, name):
    for k, v in view["headers"].items():
        if k.lower() == name.lower():
            return v
    return None


class Key:
    """An ES256 key, its JWKS and tokens signed with it."""

    def __init__(self, kid="ci-1"):
        self.kid = kid
        self.private = ec.generate_private_key(ec.SECP256R1())
        nums = self.private.public_key().public_numbers()
        b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
        self.jwks = json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(nums.x), "y": b64(nums.y),
                                          "kid": kid, "alg": "ES256", "use": "sig"}]})

    def pem(self):
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def token(self, **claims):
        now = int(time.time())
        body = {"iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, self.private, algorithm="ES256", headers={"kid": self.kid})


def container_pid(name):
    return int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].split()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def exit_code(name):
    return int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())


def logs(name):
    r = podman("logs", name, check=False)
    return r.stdout + r.stderr


def cleanup_container(name):
    podman("rm", "-f", "-t", "0", name, check=False)


def kubelet_dir(path, files, version):
    """Writes `files` into `path` the way the kubelet updates a ConfigMap volume: a new
    timestamped directory, then an atomic rename of the `..data` symlink, with each file a
    symlink through `..data`."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    stamp = f"..{version:04d}_{time.strftime('%Y_%m_%d_%H_%M_%S')}"
    new = os.path.join(path, stamp)
    os.mkdir(new, 0o755)
    for name, text in files.items():
        with open(os.path.join(new, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(new, name), 0o644)
    tmp = os.path.join(path, "..data_tmp")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(stamp, tmp)
    old = os.readlink(os.path.join(path, "..data")) if os.path.lexists(os.path.join(path, "..data")) else None
    os.rename(tmp, os.path.join(path, "..data"))
    for name in files:
        link = os.path.join(path, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", name), link)
    if old:
        shutil.rmtree(os.path.join(path, old))


# --- the image -------------------------------------------------------------------------------

def test_image(args):
    info = json.loads(podman("image", "inspect", args.image).stdout)[0]
    size = int(info["Size"])
    facts["image size"] = f"{size} bytes ({size / 1048576:.1f} MiB uncompressed)"
    assert size <= MAX_IMAGE_BYTES, f"image is {size} bytes, over the {MAX_IMAGE_BYTES} budget"

    cfg = info["Config"]
    assert cfg.get("User") == f"{UID}:{UID}", f"image user is {cfg.get('User')!r}"
    assert cfg.get("Entrypoint") == ["/usr/local/bin/jwtgate"], cfg.get("Entrypoint")
    assert cfg.get("Cmd") == ["--config", "/etc/jwtgate/jwtgate.yaml"], cfg.get("Cmd")
    assert set(cfg.get("ExposedPorts", {})) == {"8080/tcp", "9901/tcp"}, cfg.get("ExposedPorts")
    hc = info.get("Healthcheck") or cfg.get("Healthcheck") or {}
    assert hc.get("Test", [])[:3] == ["CMD", "/usr/local/bin/jwtgate", "health"], f"healthcheck {hc}"
    labels = cfg.get("Labels") or {}
    version = podman("run", "--rm", args.image, "--version").stdout.strip()
    assert labels.get("org.opencontainers.image.version") and version.endswith(labels["org.opencontainers.image.version"]), \
        f"version label {labels.get('org.opencontainers.image.version')!r} vs binary {version!r}"
    for label in ("source", "licenses", "revision"):
        assert f"org.opencontainers.image.{label}" in labels, f"no {label} label"

    # What is in it: nothing but the binary, its libraries, CA certificates and the identity files.
    name = "jwtgate-ci-export"
    cleanup_container(name)
    podman("create", "--name", name, args.image)
    try:
        exported = subprocess.run(["podman", "export", name], capture_output=True, check=True, timeout=120).stdout
    finally:
        cleanup_container(name)
    with tempfile.NamedTemporaryFile() as f:
        f.write(exported)
        f.flush()
        with tarfile.open(f.name) as t:
            members = [m for m in t.getmembers() if m.isfile()]
            passwd = t.extractfile("etc/passwd").read().decode()
    paths = {"/" + m.name.lstrip("./") for m in members}
    for forbidden in ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/apt", "/usr/bin/dpkg", "/usr/bin/gcc", "/usr/bin/curl"):
        assert forbidden not in paths, f"{forbidden} is in the runtime image"
    unexpected = [p for p in paths if not (p.startswith(("/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"))
                                           or p in {"/usr/local/bin/jwtgate", "/etc/ssl/certs/ca-certificates.crt", "/etc/passwd",
                                                    "/etc/group", "/etc/nsswitch.conf", "/etc/jwtgate/jwtgate.yaml"})]
    assert not unexpected, f"unexpected files in the image: {sorted(unexpected)}"
    assert f"nonroot:x:{UID}:{UID}:" in passwd, passwd
    biggest = sorted(members, key=lambda m: -m.size)[:6]
    facts["largest files"] = ", ".join(f"{os.path.basename(m.name)} {m.size / 1048576:.1f} MiB" for m in biggest)
    libs = sum(m.size for m in members if "/lib" in "/" + m.name)
    facts["shared libraries"] = f"{libs / 1048576:.1f} MiB in {sum(1 for m in members if '.so' in m.name)} files"

    r = podman("run", "--rm", "--entrypoint", "/bin/sh", args.image, "-c", "true", check=False)
    assert r.returncode != 0, "the image ran /bin/sh"


# --- the shipped configs, checked by the image's own binary --------------------------------------

def test_shipped_configs(args):
    configmap = next(d for d in load_manifest("configmap.yaml") if d["kind"] == "ConfigMap")
    shipped = {"the Kubernetes ConfigMap": configmap["data"]["jwtgate.yaml"]}
    for rel in ("deploy/compose/gateway/jwtgate.yaml", "deploy/image/jwtgate.yaml"):
        with open(os.path.join(REPO, rel)) as f:
            shipped[rel] = f.read()
    for what, text in shipped.items():
        tmp = tempfile.mkdtemp(prefix="jwtgate-ci-check-")
        try:
            os.chmod(tmp, 0o755)
            with open(os.path.join(tmp, "jwtgate.yaml"), "w") as f:
                f.write(text)
            os.chmod(os.path.join(tmp, "jwtgate.yaml"), 0o644)
            r = podman("run", "--rm", "-v", f"{tmp}:/etc/jwtgate:ro", args.image, "check-config", "--config",
                       "/etc/jwtgate/jwtgate.yaml", check=False)
            assert r.returncode == 0, f"{what}: check-config exited {r.returncode}:\n{r.stdout}{r.stderr}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --- the development default in a container ---------------------------------------------------

def test_dev_default(args):
    name = "jwtgate-ci-dev"
    cleanup_container(name)
    port = free_port()
    started = time.monotonic()
    podman("run", "-d", "--name", name, "--read-only", "-p", f"127.0.0.1:{port}:8080", args.image)
    try:
        out = eventually("the banner's token", lambda: re.search(r"Authorization: Bearer ([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)'",
                                                                 logs(name)))
        token = out.group(1)
        text = logs(name)
        assert "curl -H 'Authorization: Bearer" in text and "http://localhost:8080/hello" in text, \
            f"the banner's curl line does not name http://localhost:8080:\n{text[-3000:]}"
        assert "WARNING" in text and "0.0.0.0:8080" in text, "the banner does not flag the non-loopback listener"

        def ready():
            return podman("healthcheck", "run", name, check=False).returncode == 0
        eventually("the HEALTHCHECK to pass", ready, timeout=20)
        facts["container start to healthy (development default)"] = f"{time.monotonic() - started:.2f} s"

        status, _, body = request("127.0.0.1", port, "/hello", {"Authorization": f"Bearer {token}", "X-Jwt-Sub": "forged"})
        assert status == 200, f"valid token through the container: {status} {body[:300]!r}"
        view = echo_view(body)
        assert header(view, "X-Jwt-Sub") == "dev-user", f"upstream saw X-Jwt-Sub={header(view, 'X-Jwt-Sub')!r}"
        status, headers, _ = request("127.0.0.1", port, "/hello")
        assert status == 401 and "Bearer" in headers.get("WWW-Authenticate", ""), f"no token: {status} {headers}"
        status, _, _ = request("127.0.0.1", port, "/hello", {"Authorization": f"Bearer {token[:-4]}AAAA"})
        assert status == 401, f"a bad signature got {status}"

        pid = container_pid(name)
        uid = proc_status(pid, "Uid")
        gid = proc_status(pid, "Gid")
        assert uid[0] == str(UID) and uid[1] == str(UID), f"jwtgate runs as uid {uid}"
        assert gid[0] == str(UID), f"jwtgate runs as gid {gid}"
        assert proc_status(pid, "CapEff")[0] == "0000000000000000", f"effective capabilities {proc_status(pid, 'CapEff')}"

        # docker stop: SIGTERM with a keep-alive connection open → drained, exit 0, well inside 10 s.
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        idle.sendall(b"GET /public/x HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.recv(65536)
        t0 = time.monotonic()
        podman("stop", "-t", "10", name, timeout=30)
        took = time.monotonic() - t0
        facts["podman stop (drain with an idle keep-alive connection)"] = f"{took:.2f} s"
        assert took < 9, f"stop took {took:.1f}s: the drain did not finish before the 10 s SIGKILL"
        assert exit_code(name) == 0, f"exit code after stop: {exit_code(name)}\n{logs(name)[-2000:]}"
        assert "draining" in logs(name), "no drain logged"
        idle.close()
    finally:
        if not args.keep:
            cleanup_container(name)


# --- a container on a mounted config: health, read-only root, cache_file ---------------------

def test_mounted_config(args):
    tmp = tempfile.mkdtemp(prefix="jwtgate-ci-cfg-")
    name = "jwtgate-ci-cfg"
    cleanup_container(name)
    try:
        # A provider whose JWKS cannot be fetched: the proxy runs, /readyz says 503, and both the
        # image's HEALTHCHECK and `jwtgate health` say unhealthy.
        with open(os.path.join(tmp, "jwtgate.yaml"), "w") as f:
            f.write("listen: 0.0.0.0:8080\n"
                    "admin: {listen: 127.0.0.1:9901}\n"
                    "upstream: http://127.0.0.1:3000\n"
                    "providers:\n"
                    "  - name: unreachable\n"
                    "    issuer: http://127.0.0.1:1/\n"
                    "    audiences: [ci]\n"
                    "    algorithms: [ES256]\n"
                    "    jwks: {uri: 'http://127.0.0.1:1/jwks.json', timeout: 1s, cache_file: /var/lib/jwtgate/unreachable.json}\n")
        os.chmod(tmp, 0o755)
        os.chmod(os.path.join(tmp, "jwtgate.yaml"), 0o644)
        # A named volume starts as a copy of the image's /var/lib/jwtgate, owned by 65532.
        podman("volume", "rm", "-f", "jwtgate-ci-cache", check=False)
        podman("run", "-d", "--name", name, "--read-only", "-v", "jwtgate-ci-cache:/var/lib/jwtgate",
               "-v", f"{tmp}:/etc/jwtgate:ro", args.image)
        eventually("the proxy to listen", lambda: "listening" in logs(name), timeout=15)
        time.sleep(1.5)
        r = podman("healthcheck", "run", name, check=False)
        assert r.returncode != 0, f"healthcheck passed with a provider that has no keys: {r.stdout} {r.stderr}"
        r = podman("exec", name, "/usr/local/bin/jwtgate", "health", check=False)
        assert r.returncode == 1, f"jwtgate health exit {r.returncode}, stderr {r.stderr!r}"
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "503" in lines[0], f"jwtgate health said {r.stderr!r}"
        r = podman("exec", name, "/usr/local/bin/jwtgate", "health", "--url", "http://127.0.0.1:9901/healthz", check=False)
        assert r.returncode == 0, f"/healthz (live) reported unhealthy: {r.stderr!r}"
        r = podman("exec", name, "/usr/local/bin/jwtgate", "health", "--url", "http://127.0.0.1:9/readyz", "--timeout", "1s",
                   check=False)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, f"refused port: {r.returncode} {r.stderr!r}"
        assert "Read-only file system" not in logs(name), logs(name)[-2000:]
    finally:
        if not args.keep:
            cleanup_container(name)
            podman("volume", "rm", "-f", "jwtgate-ci-cache", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


# --- Kubernetes: the manifest's pod spec, run by podman kube play -----------------------------

def load_manifest(file):
    with open(os.path.join(REPO, "deploy", "kubernetes", file)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_from_deployment(deployment, image, config_dir, idp_dir, cache_dir):
    """The Deployment's pod template as podman 4.3 can run it. What changes, and why:
    - the native sidecar (an initContainer with restartPolicy: Always) becomes an ordinary
      container: podman 4.3 runs initContainers to completion first, so it would wait forever;
    - images point at the image under test; the user's app is replaced by `jwtgate echo` on
      127.0.0.1:3000, which shows what it received;
    - the ConfigMap volume becomes the host directory this test writes the way the kubelet does,
      the emptyDir a host directory (so the test can see cache_file), the optional Secret is
      dropped;
    - probes are removed: podman runs httpGet probes with curl inside the container, which a
      scratch image does not have; the test makes the kubelet's requests itself instead;
    - a dev-idp container serves the JWKS inside the pod (the pod cannot reach the host)."""
    spec = copy.deepcopy(deployment["spec"]["template"]["spec"])
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    assert len(sidecars) == 1, "the Deployment has no native jwtgate sidecar"
    sidecar = sidecars[0]
    probes = {k: sidecar.pop(k) for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in sidecar}
    del sidecar["restartPolicy"]
    sidecar["image"] = image
    apps = [c for c in spec["containers"]]
    assert apps, "the Deployment has no app container"
    app = apps[0]
    for k in ("startupProbe", "readinessProbe", "livenessProbe", "ports", "env", "envFrom", "resources", "volumeMounts"):
        app.pop(k, None)
    app.pop("command", None)
    app.update({"name": "app", "image": image, "args": ["echo", "--listen", "127.0.0.1:3000", "--name", "legacy-app"]})
    idp = {"name": "idp", "image": image,
           "args": ["dev-idp", "--listen", "127.0.0.1:9000", "--issuer", "http://127.0.0.1:9000", "--key",
                    "/run/idp/key.pem", "--alg", "ES256", "--kid", "ci-1"],
           "volumeMounts": [{"name": "idp-key", "mountPath": "/run/idp", "readOnly": True}],
           "securityContext": copy.deepcopy(sidecar.get("securityContext", {}))}
    spec["initContainers"] = [c for c in spec.get("initContainers", []) if c is not sidecar]
    if not spec["initContainers"]:
        del spec["initContainers"]
    spec["containers"] = [sidecar, app, idp]
    volumes = []
    secret_volumes = set()
    for v in spec.get("volumes", []):
        if "configMap" in v:
            volumes.append({"name": v["name"], "hostPath": {"path": config_dir, "type": "Directory"}})
        elif "emptyDir" in v:
            volumes.append({"name": v["name"], "hostPath": {"path": cache_dir, "type": "Directory"}})
        elif "secret" in v:
            secret_volumes.add(v["name"])
        else:
            volumes.append(v)
    volumes.append({"name": "idp-key", "hostPath": {"path": idp_dir, "type": "Directory"}})
    spec["volumes"] = volumes
    sidecar["volumeMounts"] = [m for m in sidecar.get("volumeMounts", []) if m["name"] not in secret_volumes]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jwtgate-ci-pod", "labels": {"app": "jwtgate-ci"}},
            "spec": spec}, sidecar, probes


def pod_config(manifest_yaml, extra_claim_header=None):
    """The ConfigMap's jwtgate.yaml with its provider pointed at the in-pod dev-idp."""
    cfg = yaml.safe_load(manifest_yaml)
    p = cfg["providers"][0]
    p["issuer"] = "http://127.0.0.1:9000"
    p["audiences"] = ["ci-api"]
    p["algorithms"] = ["ES256"]
    jwks = p.setdefault("jwks", {})
    jwks["uri"] = "http://127.0.0.1:9000/.well-known/jwks.json"
    for k in ("discovery", "file", "ca_file", "proxy"):
        jwks.pop(k, None)
    p["token_sources"] = [{"header": "Authorization", "prefix": "Bearer "}]
    p["require_claims"] = ["exp", "sub"]
    headers = {"sub": "X-Jwt-Sub"}
    if extra_claim_header:
        headers["email"] = extra_claim_header
    p["claims_to_headers"] = headers
    p.pop("forward_payload_header", None)
    cfg["routes"] = [{"prefix": "/healthz", "auth": "none"}, {"prefix": "/", "auth": "required"}]
    return yaml.safe_dump(cfg, sort_keys=False)


def test_kubernetes_pod(args):
    deployment = next(d for d in load_manifest("deployment.yaml") if d["kind"] == "Deployment")
    configmap = next(d for d in load_manifest("configmap.yaml") if d["kind"] == "ConfigMap")
    manifest_config = configmap["data"]["jwtgate.yaml"]
    tmp = tempfile.mkdtemp(prefix="jwtgate-ci-pod-")
    os.chmod(tmp, 0o755)
    config_dir, idp_dir, cache_dir = (os.path.join(tmp, d) for d in ("config", "idp", "cache"))
    for d in (idp_dir, cache_dir):
        os.mkdir(d)
    os.chown(cache_dir, UID, UID)
    os.chmod(cache_dir, 0o700)
    key = Key("ci-1")
    with open(os.path.join(idp_dir, "key.pem"), "w") as f:
        f.write(key.pem())
    os.chown(os.path.join(idp_dir, "key.pem"), UID, UID)
    os.chmod(os.path.join(idp_dir, "key.pem"), 0o600)
    os.chmod(idp_dir, 0o755)
    kubelet_dir(config_dir, {"jwtgate.yaml": pod_config(manifest_config)}, 1)

    pod, sidecar, probes = pod_from_deployment(deployment, args.image, config_dir, idp_dir, cache_dir)
    pod_file = os.path.join(tmp, "pod.yaml")
    with open(pod_file, "w") as f:
        yaml.safe_dump(pod, f, sort_keys=False)
    podman("kube", "down", pod_file, check=False)
    started = time.monotonic()
    try:
        podman("kube", "play", pod_file, timeout=180)
        infra = json.loads(podman("pod", "inspect", "jwtgate-ci-pod").stdout)
        infra = infra[0] if isinstance(infra, list) else infra
        ctr = json.loads(podman("inspect", infra["InfraContainerID"]).stdout)[0]
        ip = next(iter(ctr["NetworkSettings"]["Networks"].values()))["IPAddress"]
        assert ip, "the pod has no IP"
        sidecar_name = f"jwtgate-ci-pod-{sidecar['name']}"

        port = lambda p: next(c["containerPort"] for c in sidecar["ports"] if c.get("name") == p or c["containerPort"] == p)
        http_port = port("http")
        # The kubelet's probes, as the manifest defines them.
        for kind, probe in probes.items():
            get = probe["httpGet"]
            probe_port = get["port"] if isinstance(get["port"], int) else port(get["port"])
            eventually(f"{kind} {get['path']}", lambda: request(ip, probe_port, get["path"])[0] == 200, timeout=30)
        facts["pod start to ready (kube play to /readyz 200)"] = f"{time.monotonic() - started:.2f} s"

        # Through the sidecar: claims reach the app, forged identity headers do not.
        tok = key.token(iss="http://127.0.0.1:9000", aud="ci-api", sub="alice", email="alice@example.com")
        status, _, body = request(ip, http_port, "/orders/1", {"Authorization": f"Bearer {tok}", "X-Jwt-Sub": "mallory",
                                                                 "x_jwt_sub": "mallory"})
        assert status == 200, f"valid token through the sidecar: {status} {body[:300]!r}"
        view = echo_view(body)
        assert header(view, "X-Jwt-Sub") == "alice", f"app saw X-Jwt-Sub={header(view, 'X-Jwt-Sub')!r}"
        assert header(view, "x_jwt_sub") is None, "a forged identity header in another spelling reached the app"
        assert view.get("service") == "legacy-app", f"answered by {view.get('service')!r}"
        assert request(ip, http_port, "/orders/1")[0] == 401, "no token through the sidecar"
        wrong = key.token(iss="http://127.0.0.1:9000", aud="other-api", sub="alice")
        assert request(ip, http_port, "/orders/1", {"Authorization": f"Bearer {wrong}"})[0] == 401, "wrong audience"

        # The app's own port is not reachable from outside the pod.
        try:
            socket.create_connection((ip, 3000), timeout=3).close()
            reachable = True
        except OSError:
            reachable = False
        assert not reachable, f"the app's port {ip}:3000 accepted a connection from outside the pod"

        # cache_file landed in the emptyDir, written by 65532, mode 0600.
        cached = eventually("cache_file in the emptyDir", lambda: [f for f in os.listdir(cache_dir) if f.endswith(".json")], timeout=15)
        st = os.stat(os.path.join(cache_dir, cached[0]))
        assert st.st_uid == UID and (st.st_mode & 0o777) == 0o600, f"cache file owner {st.st_uid} mode {oct(st.st_mode)}"

        # Idle memory of the sidecar.
        pid = container_pid(sidecar_name)
        rss_kib = int(proc_status(pid, "VmRSS")[0])
        facts["sidecar idle RSS in the pod"] = f"{rss_kib / 1024:.1f} MiB"
        uid = proc_status(pid, "Uid")
        assert uid[0] == str(UID), f"sidecar uid {uid}"

        # A ConfigMap change arrives through the ..data swap and is applied without a restart.
        assert header(view, "X-Jwt-Email") is None, "email header before the change"
        kubelet_dir(config_dir, {"jwtgate.yaml": pod_config(manifest_config, extra_claim_header="X-Jwt-Email")}, 2)

        def email_forwarded():
            s, _, b = request(ip, http_port, "/orders/2", {"Authorization": f"Bearer {tok}"})
            return s == 200 and header(echo_view(b), "X-Jwt-Email") == "alice@example.com"
        eventually("the ConfigMap change to apply", email_forwarded, timeout=30)
        assert container_pid(sidecar_name) == pid, "the sidecar restarted to pick up the ConfigMap change"
        restarts = podman("inspect", "--format", "{{.RestartCount}}", sidecar_name).stdout.strip()
        assert restarts in ("0", ""), f"sidecar restart count {restarts}"
    finally:
        if not args.keep:
            podman("kube", "down", pod_file, check=False, timeout=60)
            shutil.rmtree(tmp, ignore_errors=True)


# --- compose ----------------------------------------------------------------------------------

def compose_cmd():
    return ["podman-compose"] if shutil.which("podman-compose") else ["docker-compose"]


def test_compose(args):
    compose_file = os.path.join(REPO, "deploy", "compose", "compose.yaml")
    gw, idp = free_port(), free_port()
    env = dict(os.environ, JWTGATE_IMAGE=args.image, JWTGATE_GATEWAY_PORT=str(gw), JWTGATE_IDP_PORT=str(idp))
    base = compose_cmd() + ["-p", "jwtgate-ci", "-f", compose_file]
    run = lambda *a, **kw: subprocess.run(base + list(a), env=env, capture_output=True, text=True, timeout=kw.get("timeout", 180))
    run("down", "-t", "5")
    try:
        r = run("up", "-d", "--no-build")
        assert r.returncode == 0, f"compose up: {r.stdout[-2000:]} {r.stderr[-2000:]}"

        def token():
            s, _, b = request("127.0.0.1", idp, "/token?format=raw", method="POST",
                              body=json.dumps({"sub": "alice", "scope": "orders:read inventory:read"}),
                              headers={"Content-Type": "application/json"})
            return b.decode().strip() if s == 200 else None
        tok = eventually("a token from jwtgate dev-idp", token, timeout=40)

        def through(path):
            s, _, b = request("127.0.0.1", gw, path, {"Authorization": f"Bearer {tok}"})
            return (s, echo_view(b)) if s == 200 else None
        s, view = eventually("the gateway to answer /orders", lambda: through("/orders/42"), timeout=60)
        assert view.get("service") == "orders" and header(view, "X-Jwt-Sub") == "alice", view
        s, view = through("/inventory/7") or (None, None)
        assert view and view.get("service") == "inventory", f"/inventory answered by {view}"
        assert request("127.0.0.1", gw, "/orders/42")[0] == 401, "no token through the gateway"
        s, _, b = request("127.0.0.1", idp, "/token?format=raw", method="POST", body=json.dumps({"sub": "bob", "scope": "orders:read"}),
                          headers={"Content-Type": "application/json"})
        assert s == 200
        bob = b.decode().strip()
        assert request("127.0.0.1", gw, "/inventory/7", {"Authorization": f"Bearer {bob}"})[0] == 403, "missing scope"
    finally:
        if not args.keep:
            run("down", "-t", "5")


TESTS = {"image": test_image, "shipped-configs": test_shipped_configs, "dev-default": test_dev_default, "mounted-config": test_mounted_config,
         "kubernetes-pod": test_kubernetes_pod, "compose": test_compose}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", required=True)
    ap.add_argument("--only", action="append")
    ap.add_argument("--keep", action="store_true", help="leave containers and pods running after a test")
    args = ap.parse_args()
    failed = []
    for name, fn in TESTS.items():
        if args.only and name not in args.only:
            continue
        t0 = time.monotonic()
        try:
            fn(args)
            print(f"ok   {name} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception:  # noqa: BLE001 - report every test, fail at the end
            failed.append(name)
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s)\n{traceback.format_exc()}", flush=True)
    print("\nmeasured:")
    for k, v in facts.items():
        print(f"  {k}: {v}")
    if failed:
        print(f"\n{len(failed)} failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
