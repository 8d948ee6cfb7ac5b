#!/usr/bin/env python3
"""Checks the image and what runs it, without a Docker engine. Exit 1 on any failure.

1. Replays the Dockerfile's build stage in a scratch folder: its COPY set, copied from
   the repository as the build context would be, and its RUN lines in order (system
   package installs skipped, `cargo build --release` run as `cargo check`, sharing this
   repository's target directory), so a file missing from the build context, a manifest
   cargo cannot load or a target without a source fails here.
2. The runtime stage copies the binary the manifest names from where the build puts it.
3. docker-compose.yml and deploy/k8s run the image as built: its user and group, its
   port, its entrypoint and command, its writable directories.
4. deploy/k8s: the probes, drain, security context and resources the service needs;
   the Service, ServiceMonitor, PodDisruptionBudget and HorizontalPodAutoscaler point at
   the Deployment; the kustomization lists every manifest; the ConfigMap holds only
   plain settings and the Secret exactly the secret ones (src/config/keys.rs).

    check_image.py            all of it
    check_image.py --static   without the replay (no cargo)
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}", file=sys.stderr)


def instructions(path):
    """The Dockerfile's instructions as (stage, keyword, arguments), continuations joined."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if not current and (raw.strip().startswith("#") or not raw.strip()):
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    stage, out = None, []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS\s+(\S+)", rest, re.I)
            stage = match.group(1) if match else rest
        out.append((stage, keyword, rest.strip()))
    return out


def replay(steps, workdir):
    """Runs the build stage's COPY and RUN lines in a scratch folder."""
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    with tempfile.TemporaryDirectory(prefix="image-replay-") as scratch:
        scratch = pathlib.Path(scratch)
        for keyword, rest in steps:
            if keyword == "COPY":
                args = [a for a in shlex.split(rest) if not a.startswith("--")]
                *sources, dest = args
                if dest.startswith("/"):
                    if not dest.startswith(workdir):
                        fail(f"Dockerfile: COPY into {dest}, outside the WORKDIR {workdir}")
                        return
                    dest = dest[len(workdir):].lstrip("/") or "."
                dest_path = scratch / dest
                for source in sources:
                    origin = ROOT / source
                    if not origin.exists():
                        fail(f"Dockerfile: COPY {source}: not in the build context")
                        return
                    into = dest_path / origin.name if dest.endswith("/") or len(sources) > 1 else dest_path
                    if origin.is_dir():
                        shutil.copytree(origin, into, dirs_exist_ok=True)
                    else:
                        into.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(origin, into)
            elif keyword == "RUN":
                if rest.startswith("apt-get"):
                    continue
                command = rest.replace("cargo build --release", "cargo check")
                print(f"==> replay: RUN {command}", flush=True)
                done = subprocess.run(
                    ["sh", "-c", command],
                    cwd=scratch,
                    env={**os.environ, "CARGO_TARGET_DIR": target},
                )
                if done.returncode != 0:
                    fail(f"Dockerfile: RUN {rest!r} failed in the replay")
                    return


def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def secret_keys():
    text = (ROOT / "src" / "config" / "keys.rs").read_text()
    # key("NAME", default, Shown, "help"): the help text may hold anything but a quote.
    keys = re.findall(
        r'key\(\s*"([A-Z0-9_]+)",.*?,\s*(Plain|Secret|Url|KeyCount)\s*,\s*"(?:[^"\\]|\\.)*"\s*,?\s*\)',
        text,
        re.S,
    )
    return {k for k, shown in keys if shown != "Plain"}, {k for k, shown in keys if shown == "Plain"}


def check_image(df):
    runtime = [(k, r) for s, k, r in df if s == "runtime"]
    image = {"user": None, "port": None, "entrypoint": None, "cmd": None, "env": {}}
    for keyword, rest in runtime:
        if keyword == "USER":
            image["user"] = rest
        elif keyword == "EXPOSE":
            image["port"] = int(rest.split("/")[0])
        elif keyword == "ENTRYPOINT":
            image["entrypoint"] = yaml.safe_load(rest)
        elif keyword == "CMD" and rest.startswith("["):
            image["cmd"] = yaml.safe_load(rest)
        elif keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                image["env"][name] = value
        elif keyword == "COPY" and "--from=build" in rest:
            source = shlex.split(rest)[1]
            manifest = (ROOT / "Cargo.toml").read_text()
            binary = re.search(r'\[\[bin\]\]\s*name = "([^"]+)"', manifest).group(1)
            if source != f"/src/target/release/{binary}":
                fail(f"Dockerfile: the runtime copies {source}, the build makes /src/target/release/{binary}")
    uid, _, gid = (image["user"] or "").partition(":")
    if not uid.isdigit() or uid == "0":
        fail("Dockerfile: USER must be a numeric non-root uid")
    return image, int(uid or 0), int(gid or uid or 0)


def check_compose(image, uid):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["monitoring-service"]
    if service.get("build") != ".":
        fail("compose: monitoring-service must build the Dockerfile")
    if "entrypoint" in service or service.get("command") not in (None, image["cmd"]):
        fail("compose: entrypoint or command overrides the image's")
    if str(service.get("user", uid)).split(":")[0] != str(uid):
        fail("compose: runs as another user than the image's")
    ports = [str(p).split(":")[-1] for p in service.get("ports", [])]
    if str(image["port"]) not in ports:
        fail(f"compose: publishes {ports}, the image listens on {image['port']}")
    port = (service.get("environment") or {}).get("MONITORING_PORT", image["port"])
    if int(port) != image["port"]:
        fail("compose: MONITORING_PORT differs from the image's port")


def check_k8s(image, uid, gid):
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load(path):
            docs.setdefault(doc["kind"], []).append((path.name, doc))
    kustomization = docs.pop("Kustomization")[0][1]
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "prometheus-adapter-rules.yaml"}
    if listed != present:
        fail(f"kustomization: lists {sorted(listed)}, the folder has {sorted(present)}")

    deployment = docs["Deployment"][0][1]
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    if deployment["spec"]["selector"]["matchLabels"].items() - labels.items():
        fail("deployment: its selector does not match its pods")
    security = pod.get("securityContext", {})
    if security.get("runAsUser") != uid or security.get("runAsGroup") != gid or not security.get("runAsNonRoot"):
        fail(f"deployment: must run as the image's user {uid}:{gid}, non-root")
    (container,) = pod["containers"]
    if "command" in container or container.get("args") not in (None, image["cmd"]):
        fail("deployment: command or args override the image's entrypoint")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("http") != image["port"]:
        fail(f"deployment: port http is {ports.get('http')}, the image listens on {image['port']}")
    probes = {k: container.get(k, {}).get("httpGet", {}) for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    expected = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
    for probe, path in expected.items():
        if probes[probe].get("path") != path or probes[probe].get("port") not in ("http", image["port"]):
            fail(f"deployment: {probe} must GET {path} on the http port")
    if "preStop" not in container.get("lifecycle", {}):
        fail("deployment: a preStop drain is needed before SIGTERM")
    c_security = container.get("securityContext", {})
    if not c_security.get("readOnlyRootFilesystem") or c_security.get("allowPrivilegeEscalation") is not False:
        fail("deployment: read-only root filesystem and no privilege escalation")
    if "ALL" not in c_security.get("capabilities", {}).get("drop", []):
        fail("deployment: drop every capability")
    requests = container.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= requests.keys() or "memory" not in container["resources"].get("limits", {}):
        fail("deployment: CPU and memory requests and a memory limit")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}

    configmap = next(doc for file, doc in docs["ConfigMap"] if file == "configmap.yaml")
    config = configmap["data"]
    for key in ("ALERT_LOG_DIR", "METRICS_SNAPSHOT_DIR"):
        directory = config.get(key, image["env"].get(key))
        if directory not in mounts:
            fail(f"deployment: {key}={directory} is not a mounted volume (read-only root)")
    if int(config.get("MONITORING_PORT", image["port"])) != image["port"]:
        fail("configmap: MONITORING_PORT differs from the image's port")
    if config.get("SHARD_COUNT") != "auto":
        fail("configmap: SHARD_COUNT=auto, or the HPA cannot change the replica count")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    drain = container["lifecycle"]["preStop"].get("sleep", {}).get("seconds", 0)
    if drain + int(config.get("SHUTDOWN_TIMEOUT_SECONDS", 10)) >= grace:
        fail("deployment: preStop + SHUTDOWN_TIMEOUT_SECONDS must end before the grace period")

    secrets, plain = secret_keys()
    secret = docs["Secret"][0][1]
    in_secret = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    if in_secret != secrets:
        fail(f"secret: holds {sorted(in_secret)}, the secret settings are {sorted(secrets)}")
    if set(config) - plain:
        fail(f"configmap: {sorted(set(config) - plain)} are secrets or unknown settings")
    refs = {e.get("configMapRef", e.get("secretRef", {})).get("name") for e in container.get("envFrom", [])}
    if {configmap["metadata"]["name"], secret["metadata"]["name"]} - refs:
        fail("deployment: must take its environment from the ConfigMap and the Secret")

    service = docs["Service"][0][1]
    if service["spec"]["selector"].items() - labels.items():
        fail("service: its selector does not match the pods")
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    monitor = docs["ServiceMonitor"][0][1]
    if monitor["spec"]["selector"]["matchLabels"].items() - service["metadata"]["labels"].items():
        fail("servicemonitor: its selector does not match the Service")
    if any(e["port"] not in service_ports or e.get("path") != "/metrics" for e in monitor["spec"]["endpoints"]):
        fail("servicemonitor: must scrape /metrics on a port the Service names")
    pdb = docs["PodDisruptionBudget"][0][1]
    if pdb["spec"]["selector"]["matchLabels"].items() - labels.items():
        fail("pdb: its selector does not match the pods")
    hpa = docs["HorizontalPodAutoscaler"][0][1]
    if hpa["spec"]["scaleTargetRef"]["name"] != name:
        fail("hpa: does not scale the Deployment")
    kinds = {m["type"] for m in hpa["spec"]["metrics"]}
    if kinds != {"Resource", "Pods"}:
        fail("hpa: scales on CPU and on the batch load metric")


def main():
    df = instructions(ROOT / "Dockerfile")
    image, uid, gid = check_image(df)
    check_compose(image, uid)
    check_k8s(image, uid, gid)
    if "--static" not in sys.argv:
        workdir = next(r for s, k, r in df if s == "build" and k == "WORKDIR")
        replay([(k, r) for s, k, r in df if s == "build" and k in ("COPY", "RUN")], workdir)
    if failures:
        sys.exit(1)
    print("image, compose and manifests: consistent" + ("" if "--static" in sys.argv else "; the build stage replays"))


if __name__ == "__main__":
    main()
