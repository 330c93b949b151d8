#!/usr/bin/env python3
"""Static checks of the deployment kit in docker/ (run by scripts/check-deploy.sh).

Needs no Docker daemon and no cluster: it parses the YAML, TOML and Dockerfiles
and checks what a broken deployment would otherwise only show at run time:
probes, shard counts, paths that compose and the images refer to, config keys.

Usage: check-deploy.py ROOT TOML_OUT_DIR
  ROOT          the repository root
  TOML_OUT_DIR  where the TOML configs embedded in Kubernetes ConfigMaps are
                written (as <configmap>-<key>), so that the shell wrapper can
                run `vigil config check` on them
Each problem is printed as "check-deploy: FILE: problem"; exit status 1 if any.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # the wrapper retries with Debian's python3 first
    sys.exit("check-deploy: python3 has no yaml module (apt-get install python3-yaml, or make setup)")

ROOT = Path(sys.argv[1]).resolve()
TOML_OUT = Path(sys.argv[2])
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"

problems: list[str] = []


def problem(path: Path | str, msg: str) -> None:
    rel = os.path.relpath(path, ROOT) if isinstance(path, Path) else path
    problems.append(f"{rel}: {msg}")


def rel(p: Path) -> str:
    return os.path.relpath(p, ROOT)


# --------------------------------------------------------------------------
# 1. Every YAML file under docker/ parses.
yaml_docs: dict[Path, list] = {}
for f in sorted(list(DOCKER.rglob("*.yaml")) + list(DOCKER.rglob("*.yml"))):
    try:
        with open(f) as fh:
            yaml_docs[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
    except yaml.YAMLError as e:
        problem(f, f"invalid YAML: {e}")

# --------------------------------------------------------------------------
# 2. Config keys: every key used in our TOML configs must be one that vigil
# knows, i.e. documented in configs/vigil.toml (commented-out keys count), or
# one of the keys below that the scale-out work adds. vigil rejects unknown
# keys, so a typo here would only show when a container starts.
EXTRA_KEYS = {
    "queue": {"backend", "url", "ack_wait_s", "max_deliver", "publish_events", "events_retention_hours"},
    "shard": {"count", "index"},
}
SECTION_RE = re.compile(r"^#?\s*\[\[?\s*([a-z_]+)\s*\]\]?\s*$")
# configs/vigil.toml writes every key as `key = value` (commented out or not).
KEY_RE = re.compile(r"^#?\s*#?\s*([a-z_][a-z0-9_]*) = ")


def documented_keys() -> dict[str, set[str]]:
    known: dict[str, set[str]] = {s: set(k) for s, k in EXTRA_KEYS.items()}
    section = None
    for line in (ROOT / "configs" / "vigil.toml").read_text().splitlines():
        m = SECTION_RE.match(line.strip())
        if m:
            section = m.group(1)
            known.setdefault(section, set())
            continue
        m = KEY_RE.match(line.strip())
        if m and section:
            known[section].add(m.group(1))
    return known


KNOWN = documented_keys()


def check_toml(origin: str, text: str) -> dict | None:
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problem(origin, f"invalid TOML: {e}")
        return None
    for section, body in cfg.items():
        if section not in KNOWN:
            problem(origin, f"unknown section [{section}] (not in configs/vigil.toml)")
            continue
        tables = body if isinstance(body, list) else [body]
        for t in tables:
            if not isinstance(t, dict):
                problem(origin, f"[{section}] is not a table")
                continue
            for key in t:
                if key not in KNOWN[section]:
                    problem(origin, f"unknown key {section}.{key} (not in configs/vigil.toml)")
    return cfg


configs: dict[str, dict] = {}  # docker/configs/<name> -> parsed
for f in sorted((DOCKER / "configs").glob("*.toml")):
    cfg = check_toml(rel(f), f.read_text())
    if cfg is not None:
        configs[f.name] = cfg
if not configs:
    problem(DOCKER / "configs", "no *.toml configs")

# --------------------------------------------------------------------------
# 3. Dockerfiles: built with scripts/setup.sh, and the runtime stage (after
# the last FROM) runs as a non-root USER, has a HEALTHCHECK, exposes 8080;
# every file COPY'd from the build context exists.
dockerfiles = sorted(p for p in DOCKER.glob("Dockerfile*") if not p.name.endswith(".dockerignore"))
if not dockerfiles:
    problem(DOCKER, "no Dockerfile")


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


for df in dockerfiles:
    ins = dockerfile_instructions(df)
    if not any(i == "RUN" and "scripts/setup.sh" in a for i, a in ins):
        problem(df, "no RUN of scripts/setup.sh (images must be set up like `make setup`)")
    froms = [n for n, (i, _) in enumerate(ins) if i == "FROM"]
    if not froms:
        problem(df, "no FROM")
        continue
    final = ins[froms[-1]:]
    users = [a for i, a in final if i == "USER"]
    if not users:
        problem(df, "the runtime stage has no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("root", "0"):
        problem(df, f"the runtime stage runs as USER {users[-1]}")
    if not any(i == "HEALTHCHECK" and "NONE" not in a.upper().split() for i, a in final):
        problem(df, "the runtime stage has no HEALTHCHECK")
    if not any(i == "EXPOSE" and "8080" in a.split() for i, a in final):
        problem(df, "the runtime stage does not EXPOSE 8080")
    for i, a in ins:
        if i not in ("COPY", "ADD") or "--from=" in a:
            continue
        args = [w for w in a.split() if not w.startswith("--")]
        for src in args[:-1]:
            if src.strip("./") and not any(ROOT.glob(src.strip("/"))):
                problem(df, f"{i} source {src} does not exist in the build context")

# --------------------------------------------------------------------------
# 4. Compose: the vigil services' --config files are mounted from files that
# exist, every bind-mounted file exists, build Dockerfiles exist, and
# Prometheus scrapes every vigil service.
compose_files = sorted(DOCKER.glob("compose*.yaml"))
compose_vigil_services: set[str] = set()


def is_vigil_image(image: str | None) -> bool:
    """vigil:cpu, registry.example.com/vigil:1.0, ${VIGIL_IMAGE:-vigil:cpu}."""
    if not image:
        return False
    image = re.sub(r"\$\{[A-Za-z0-9_]+:?-([^}]*)\}", r"\1", image)
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0] == "vigil"


for cf in compose_files:
    docs = yaml_docs.get(cf)
    if not docs:
        continue
    services = docs[0].get("services") or {}
    if not services:
        problem(cf, "no services")
    for name, svc in services.items():
        svc = svc or {}
        build = svc.get("build")
        if isinstance(build, dict):
            ctx = (cf.parent / build.get("context", ".")).resolve()
            dfile = ctx / build.get("dockerfile", "Dockerfile")
            if not dfile.is_file():
                problem(cf, f"service {name}: build dockerfile {rel(dfile)} does not exist")
        mounts: dict[str, Path] = {}
        for v in svc.get("volumes") or []:
            if isinstance(v, dict):
                src, dst = v.get("source", ""), v.get("target", "")
            else:
                src, _, dst = str(v).partition(":")
                dst = dst.split(":")[0]
            if src.startswith((".", "/")):  # a bind mount, not a named volume
                p = (cf.parent / src).resolve()
                mounts[dst] = p
                # data/ is fetched by `make setup` and not committed.
                if not p.exists() and p != (ROOT / "data"):
                    problem(cf, f"service {name}: bind mount source {src} does not exist")
        if not is_vigil_image(svc.get("image")):
            continue
        compose_vigil_services.add(name)
        cmd = svc.get("command")
        if cf.name != "compose.yaml" and cmd is None:
            continue  # an override file keeps the base file's command
        cmd = cmd if isinstance(cmd, list) else str(cmd or "").split()
        if "--config" not in cmd or cmd.index("--config") + 1 >= len(cmd):
            problem(cf, f"service {name}: command {cmd} has no --config FILE")
            continue
        target = cmd[cmd.index("--config") + 1]
        src = mounts.get(target)
        if src is None:
            problem(cf, f"service {name}: --config {target} is not bind-mounted from a file in the repository")
        elif not src.is_file():
            problem(cf, f"service {name}: config {rel(src)} does not exist")
        elif src.parent != DOCKER / "configs":
            problem(cf, f"service {name}: config {rel(src)} is not under docker/configs/")

prom = yaml_docs.get(DOCKER / "prometheus.yml")
if prom and compose_vigil_services:
    scraped = set()
    for job in prom[0].get("scrape_configs") or []:
        for sd in job.get("dns_sd_configs") or []:
            scraped.update(sd.get("names") or [])
        for sc in job.get("static_configs") or []:
            scraped.update(t.rsplit(":", 1)[0] for t in sc.get("targets") or [])
    for s in sorted(compose_vigil_services - scraped):
        problem(DOCKER / "prometheus.yml", f"compose service {s} is not scraped")

# --------------------------------------------------------------------------
# 5. Kubernetes manifests.
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
OPTIONAL_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}  # CRDs that may be absent
KUSTOMIZE_KINDS = {"Kustomization", "Component"}

kustomizations = {f.parent: docs[0] for f, docs in yaml_docs.items()
                  if f.name == "kustomization.yaml" and K8S in f.parents and docs}
listed: set[Path] = set()  # resource files listed by some kustomization
patch_files: set[Path] = set()
for kdir, k in kustomizations.items():
    kf = kdir / "kustomization.yaml"
    if k.get("kind") not in KUSTOMIZE_KINDS:
        problem(kf, f"kind is {k.get('kind')!r}, not Kustomization")
    if k.get("namespace"):
        problem(kf, "sets a namespace; the manifests are namespace-less (choose one at apply time)")
    entries = [("resource", r) for r in k.get("resources") or []]
    entries += [("component", r) for r in k.get("components") or []]
    for p in k.get("patches") or []:
        if isinstance(p, dict) and "path" in p:
            entries.append(("patch", p["path"]))
    entries += [("patch", p) for p in k.get("patchesStrategicMerge") or []]
    for what, r in entries:
        p = (kdir / r).resolve()
        if p.is_dir():
            if not (p / "kustomization.yaml").is_file():
                problem(kf, f"{what} {r} is a directory without kustomization.yaml")
        elif not p.is_file():
            problem(kf, f"{what} {r} does not exist")
        elif what == "patch":
            patch_files.add(p)
        else:
            listed.add(p)

k8s_objects: list[tuple[Path, dict]] = []
for f, docs in yaml_docs.items():
    if K8S not in f.parents or f.name == "kustomization.yaml":
        continue
    for d in docs:
        if not isinstance(d, dict):
            problem(f, "a document is not a mapping")
            continue
        for field in ("apiVersion", "kind"):
            if not d.get(field):
                problem(f, f"a document has no {field}")
        name = (d.get("metadata") or {}).get("name")
        if not name:
            problem(f, f"a {d.get('kind')} has no metadata.name")
        if (d.get("metadata") or {}).get("namespace"):
            problem(f, f"{d.get('kind')}/{name} sets metadata.namespace; the manifests are namespace-less")
        kind = d.get("kind")
        if f in patch_files:
            continue
        if kind in OPTIONAL_KINDS:
            if f in listed:
                problem(f, f"{kind}/{name} is listed in a kustomization; its CRD may be absent, keep it separate")
        elif f not in listed:
            problem(f, f"{kind}/{name} is not listed in any kustomization.yaml")
        k8s_objects.append((f, d))


def vigil_containers(obj: dict) -> list[dict]:
    spec = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {})
    return [c for c in spec.get("containers") or [] if is_vigil_image(c.get("image"))]


def check_workloads(origin: Path | str, objs: list[dict], configmaps: dict[str, dict[str, str]]) -> None:
    """Probes, resources, shard counts and --config files of the vigil workloads."""
    seen = 0
    for obj in objs:
        if obj.get("kind") not in WORKLOADS:
            continue
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = obj.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        for c in vigil_containers(obj):
            seen += 1
            who = f"{name} container {c.get('name')}"
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = ((c.get(probe) or {}).get("httpGet") or {}).get("path")
                if got != path:
                    problem(origin, f"{who}: {probe} must be an httpGet of {path}, is {got!r}")
            res = c.get("resources") or {}
            if not (res.get("requests") and res.get("limits")):
                problem(origin, f"{who}: no resources.requests and resources.limits")
            env = {e.get("name"): e for e in c.get("env") or []}
            if obj["kind"] == "StatefulSet":
                count = (env.get("VIGIL_SHARD_COUNT") or {}).get("value")
                replicas = spec.get("replicas", 1)
                if count is None:
                    problem(origin, f"{who}: no VIGIL_SHARD_COUNT env (must equal replicas, {replicas})")
                elif str(count) != str(replicas):
                    problem(origin, f"{who}: VIGIL_SHARD_COUNT={count} but replicas={replicas}; they must be equal")
            args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            if "--config" not in args or args.index("--config") + 1 >= len(args):
                problem(origin, f"{who}: no --config FILE in args")
                continue
            cfg_path = args[args.index("--config") + 1]
            mounted = False
            for m in c.get("volumeMounts") or []:
                mp = m.get("mountPath", "").rstrip("/")
                if not cfg_path.startswith(mp + "/"):
                    continue
                vol = next((v for v in pod.get("volumes") or [] if v.get("name") == m.get("name")), {})
                cm = (vol.get("configMap") or {}).get("name")
                key = cfg_path[len(mp) + 1:]
                if cm is None:
                    continue
                mounted = True
                if cm not in configmaps:
                    problem(origin, f"{who}: ConfigMap {cm} is not defined")
                elif key not in configmaps[cm]:
                    problem(origin, f"{who}: ConfigMap {cm} has no key {key} (--config {cfg_path})")
            if not mounted:
                problem(origin, f"{who}: --config {cfg_path} is not in a mounted ConfigMap")
    if seen == 0:
        problem(origin, "no vigil containers found")


def check_network_policies(origin: Path | str, objs: list[dict]) -> None:
    """Every vigil pod is covered by NetworkPolicies that admit ingress only on
    its HTTP port and only from selected peers (never from everywhere), and
    restrict egress with DNS allowed; NATS, when deployed, admits only vigil."""
    pols = [o for o in objs if o.get("kind") == "NetworkPolicy"]

    def selecting(labels: dict, ptype: str) -> list[dict]:
        out = []
        for p in pols:
            spec = p.get("spec") or {}
            sel = (spec.get("podSelector") or {}).get("matchLabels") or {}
            if ptype in (spec.get("policyTypes") or []) and all(labels.get(k) == v for k, v in sel.items()):
                out.append(spec)
        return out

    def check_ingress(who: str, labels: dict, allowed_ports: set) -> None:
        specs = selecting(labels, "Ingress")
        if not specs:
            problem(origin, f"{who}: no NetworkPolicy restricts its ingress")
        for spec in specs:
            for rule in spec.get("ingress") or []:
                peers = rule.get("from")
                if not peers:
                    problem(origin, f"{who}: an ingress rule admits every source (no `from`)")
                for peer in peers or []:
                    cidr = (peer.get("ipBlock") or {}).get("cidr")
                    if cidr in ("0.0.0.0/0", "::/0"):
                        problem(origin, f"{who}: ingress from {cidr}")
                    if peer.get("namespaceSelector") == {} or peer.get("podSelector") == {} and "namespaceSelector" in peer:
                        problem(origin, f"{who}: ingress from every namespace")
                ports = {(p.get("port")) for p in rule.get("ports") or []}
                if not ports:
                    problem(origin, f"{who}: an ingress rule admits every port")
                elif not ports <= allowed_ports:
                    problem(origin, f"{who}: ingress on ports {sorted(map(str, ports - allowed_ports))} beyond {sorted(map(str, allowed_ports))}")

    for obj in objs:
        if obj.get("kind") not in WORKLOADS:
            continue
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        labels = (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        if vigil_containers(obj):
            http = {p.get("containerPort") for c in vigil_containers(obj) for p in c.get("ports") or []
                    if p.get("name") == "http"} | {"http"}
            check_ingress(name, labels, http)
            egress = selecting(labels, "Egress")
            if not egress:
                problem(origin, f"{name}: no NetworkPolicy restricts its egress")
            dns = any(p.get("port") == 53 for e in egress for r in e.get("egress") or [] for p in r.get("ports") or [])
            if egress and not dns:
                problem(origin, f"{name}: its egress policies do not allow DNS (port 53)")
        elif labels.get("app.kubernetes.io/name") == "nats":
            check_ingress(name, labels, {4222, 8222, "client", "monitor"})


def configmaps_of(objs: list[dict]) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data") or {} for o in objs
            if o.get("kind") == "ConfigMap" and o.get("metadata", {}).get("name")}


# The TOML inside ConfigMaps: same key check as docker/configs, and written out
# for `vigil config check`. Zero of them means the manifests changed shape and
# this check would silently check nothing: that is a failure.
base_cms = configmaps_of([d for _, d in k8s_objects])
TOML_OUT.mkdir(parents=True, exist_ok=True)
configmap_tomls = 0
for cm, data in base_cms.items():
    for key, text in data.items():
        if key.endswith(".toml"):
            check_toml(f"ConfigMap {cm} key {key}", text)
            (TOML_OUT / f"{cm}-{key}").write_text(text)
            configmap_tomls += 1
if k8s_objects and configmap_tomls == 0:
    problem(K8S, "no ConfigMap holds a *.toml config: nothing for `vigil config check` to check")


def find_kubectl() -> str | None:
    """$KUBECTL, then the one `make setup` installs, then PATH."""
    for cand in (os.environ.get("KUBECTL"), str(ROOT / "third_party" / "kubectl" / "kubectl"),
                 shutil.which("kubectl")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def contains(rendered, patch, where: str) -> list[str]:
    """Where `rendered` lacks what the strategic-merge `patch` sets: every
    mapping key recursively, list items that have a `name` matched by name,
    other list items by equality. Empty when the patch took effect."""
    if isinstance(patch, dict):
        if not isinstance(rendered, dict):
            return [f"{where}: expected a mapping, rendered {rendered!r}"]
        out = []
        for k, v in patch.items():
            if k == "$patch" or k.startswith("$setElementOrder"):
                continue
            if k not in rendered:
                out.append(f"{where}.{k}: missing")
            else:
                out += contains(rendered[k], v, f"{where}.{k}")
        return out
    if isinstance(patch, list):
        if not isinstance(rendered, list):
            return [f"{where}: expected a list, rendered {rendered!r}"]
        out = []
        for item in patch:
            if isinstance(item, dict) and "name" in item:
                match = next((r for r in rendered if isinstance(r, dict) and r.get("name") == item["name"]), None)
                if match is None:
                    out.append(f"{where}[name={item['name']}]: missing")
                else:
                    out += contains(match, item, f"{where}[name={item['name']}]")
            elif not any(not contains(r, item, where) for r in rendered):
                out.append(f"{where}: no item {item!r}")
        return out
    if str(rendered) != str(patch):
        return [f"{where}: rendered {rendered!r}, patch sets {patch!r}"]
    return []


def write_rendered_configs(label: str, objs: list[dict], configmaps: dict[str, dict[str, str]]) -> int:
    """For every vigil container as rendered: its --config file (from the
    rendered ConfigMap) and its literal VIGIL_* env, written to TOML_OUT/rendered
    as NAME.toml + NAME.env, so the wrapper runs `vigil config check` with the
    overlay's overrides applied (a VIGIL_MODEL_DEVICE typo fails here)."""
    out = TOML_OUT / "rendered"
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for obj in objs:
        if obj.get("kind") not in WORKLOADS:
            continue
        for c in vigil_containers(obj):
            args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
            if "--config" not in args or args.index("--config") + 1 >= len(args):
                continue  # reported by check_workloads
            cfg_path = args[args.index("--config") + 1]
            pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
            text = None
            for m in c.get("volumeMounts") or []:
                mp = m.get("mountPath", "").rstrip("/")
                if not cfg_path.startswith(mp + "/"):
                    continue
                vol = next((v for v in pod.get("volumes") or [] if v.get("name") == m.get("name")), {})
                cm = (vol.get("configMap") or {}).get("name")
                text = (configmaps.get(cm) or {}).get(cfg_path[len(mp) + 1:])
            if text is None:
                continue  # reported by check_workloads
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{label}__{obj['kind']}-{obj['metadata']['name']}__{c.get('name')}")
            (out / f"{name}.toml").write_text(text)
            env = [f"{e['name']}={e['value']}" for e in c.get("env") or []
                   if str(e.get("name", "")).startswith("VIGIL_") and "value" in e]
            (out / f"{name}.env").write_text("".join(line + "\n" for line in env))
            n += 1
    return n


# The workloads as applied: every kustomization rendered by kubectl's built-in
# kustomize (no cluster needed; `make setup` installs kubectl), so overlays are
# checked with their patches applied, and each overlay patch is checked to
# have taken effect in the rendered output.
kubectl = find_kubectl()
if not k8s_objects:
    problem(K8S, "no Kubernetes manifests")
elif not kustomizations:
    problem(K8S, "no kustomization.yaml: nothing to render")
elif not kubectl:
    problem(K8S, "no kubectl to render the kustomizations with: run `make setup` "
                 "(it installs third_party/kubectl/kubectl) or set KUBECTL")
else:
    rendered_any = 0
    for kdir in sorted(kustomizations):
        kf = kdir / "kustomization.yaml"
        try:
            r = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            problem(kf, "kubectl kustomize did not finish within 120 s")
            continue
        if r.returncode != 0:
            problem(kf, f"kubectl kustomize failed: {r.stderr.strip()}")
            continue
        objs = [d for d in yaml.safe_load_all(r.stdout) if d]
        if not objs:
            problem(kf, "kubectl kustomize rendered nothing")
            continue
        label = f"{rel(kdir)} (rendered)"
        check_workloads(label, objs, configmaps_of(objs))
        check_network_policies(label, objs)
        write_rendered_configs(rel(kdir), objs, configmaps_of(objs))
        rendered_any += 1
        # Each patch of this kustomization must show in the rendered objects.
        k = kustomizations[kdir]
        patch_paths = [p["path"] for p in k.get("patches") or [] if isinstance(p, dict) and "path" in p]
        patch_paths += list(k.get("patchesStrategicMerge") or [])
        for pp in patch_paths:
            for pd in yaml_docs.get((kdir / pp).resolve(), []):
                kind, pname = pd.get("kind"), (pd.get("metadata") or {}).get("name")
                target = next((o for o in objs if o.get("kind") == kind
                               and (o.get("metadata") or {}).get("name") == pname), None)
                if target is None:
                    problem(kf, f"patch {pp}: {kind}/{pname} is not in the rendered output")
                    continue
                for miss in contains(target, pd, f"{kind}/{pname}"):
                    problem(kf, f"patch {pp} did not take effect: {miss}")
    print(f"check-deploy: rendered {rendered_any} kustomization(s) with {kubectl}")

# --------------------------------------------------------------------------
for p in problems:
    print(f"check-deploy: {p}", file=sys.stderr)
if problems:
    print(f"check-deploy: FAILED, {len(problems)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"check-deploy: {len(yaml_docs)} YAML files, {len(dockerfiles)} Dockerfiles, "
      f"{len(configs)} configs, {len(k8s_objects)} Kubernetes objects: ok")
