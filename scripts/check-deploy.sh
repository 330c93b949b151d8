#!/usr/bin/env bash
# Checks the deployment kit in docker/ without Docker or a cluster:
# - every YAML file under docker/ parses;
# - Kubernetes manifests: apiVersion/kind/metadata.name, no namespace, every file
#   listed in a kustomization (the optional ServiceMonitor deliberately not),
#   every listed file exists; every vigil container has an httpGet liveness
#   probe on /healthz and readiness probe on /readyz, resources, a --config in a
#   mounted ConfigMap; the stream StatefulSet's replicas equal its
#   VIGIL_SHARD_COUNT; NetworkPolicies cover every vigil pod (ingress only on
#   its HTTP port from selected peers, egress restricted with DNS allowed) and
#   NATS (ingress from vigil only). The same on each kustomization as rendered by kubectl's
#   built-in kustomize (third_party/kubectl/kubectl from `make setup`, or
#   $KUBECTL, or kubectl on PATH; none is a failure), so the GPU overlay is
#   checked as applied, and every overlay patch must show in the output;
# - compose: the vigil services' --config files and all bind-mounted files
#   exist, build Dockerfiles exist, Prometheus scrapes every vigil service;
# - Dockerfiles: set up with scripts/setup.sh; the runtime stage has a non-root
#   USER, a HEALTHCHECK, EXPOSE 8080; COPY sources exist;
# - the TOML configs (docker/configs/*.toml and those inside ConfigMaps) parse
#   and use only keys documented in configs/vigil.toml (plus [shard] and the
#   [queue] keys of the nats backend).
# With a vigil binary as $1, also `vigil config check` on every one of those
# configs (VIGIL_* overrides from this environment are not applied), and on
# each rendered vigil container's config with that container's VIGIL_* env.
# Zero configs found is a failure, not a silent pass.
#
# Usage: scripts/check-deploy.sh [path/to/vigil]
# Needs python3 >= 3.11 with PyYAML (Debian: python3-yaml, installed by
# scripts/setup.sh). Prints each problem and exits 1 if there is any.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

fail() { printf 'check-deploy: %s\n' "$*" >&2; exit 1; }

vigil=${1:-}
if [ -n "$vigil" ]; then
  [ -x "$vigil" ] || fail "vigil binary '$vigil' does not exist or is not executable"
  vigil=$(cd "$(dirname "$vigil")" && pwd)/$(basename "$vigil")
fi

# A python3 with yaml and tomllib: the one on PATH, else Debian's (a pyenv or
# venv python3 on PATH may lack python3-yaml's module).
py=
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && "$cand" -c 'import yaml, tomllib' 2>/dev/null; then py=$cand; break; fi
done
[ -n "$py" ] || fail "no python3 (>= 3.11) with the yaml module found (apt-get install python3-yaml, or make setup)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$py" scripts/check-deploy.py "$root" "$tmp/configmaps"

# [ -x ] checked above; the image copies it and runs it as its HEALTHCHECK.
[ -x docker/healthcheck.sh ] || fail "docker/healthcheck.sh is missing or not executable"
bash -n docker/healthcheck.sh || fail "docker/healthcheck.sh: syntax error"

if [ -z "$vigil" ]; then
  echo "check-deploy: no vigil binary given; skipped \`vigil config check\` (usage: $0 path/to/vigil)"
  exit 0
fi
failed=0
checked=0
# A clean environment: VIGIL_* variables from this shell would override the
# file's keys. `config_check NAME FILE [VAR=VALUE...]`.
config_check() {
  local name=$1 file=$2 out
  shift 2
  checked=$((checked + 1))
  if out=$(env -i PATH="$PATH" HOME="${HOME:-/}" "$@" timeout 60 "$vigil" config check "$file" 2>&1); then
    echo "check-deploy: vigil config check $name: ok"
  else
    printf 'check-deploy: vigil config check %s FAILED:\n%s\n' "$name" "$out" >&2
    failed=1
  fi
}
for f in docker/configs/*.toml; do
  [ -e "$f" ] && config_check "$f" "$f"
done
# Kubernetes takes the token from a Secret (VIGIL_SERVER_TOKEN), never from
# the ConfigMap (vigil refuses to listen beyond loopback without one); a
# placeholder stands in for it here.
k8s_token=VIGIL_SERVER_TOKEN=check-deploy-placeholder
for f in "$tmp"/configmaps/*.toml; do
  [ -e "$f" ] && config_check "ConfigMap ${f#"$tmp"/configmaps/}" "$f" "$k8s_token"
done
# Each vigil container as an overlay renders it: its ConfigMap file with the
# container's VIGIL_* env applied (the GPU overlay's device and batch size).
for f in "$tmp"/configmaps/rendered/*.toml; do
  [ -e "$f" ] || continue
  mapfile -t vars < "${f%.toml}.env"
  config_check "$(basename "${f%.toml}") (with its env: ${vars[*]:-none})" "$f" "$k8s_token" "${vars[@]}"
done
[ "$checked" -gt 0 ] || fail "no configs found to check (docker/configs/*.toml, ConfigMaps): the check checked nothing"
[ "$failed" = 0 ] || fail "some configs are rejected by vigil (above)"
echo "check-deploy: ok ($checked configs checked by vigil)"
