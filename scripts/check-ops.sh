#!/usr/bin/env bash
# Checks the operator kit in docker/: Prometheus config and alert rules
# (syntax and the rule unit tests) with promtool, and that the Grafana
# dashboard and provisioning files parse. Run by `make test`; needs promtool
# (Debian package `prometheus`, installed by scripts/setup.sh) and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/docker"

command -v promtool >/dev/null || { echo "check-ops: promtool not found (apt-get install prometheus, or make setup)" >&2; exit 1; }

promtool check rules vigil.rules.yml
promtool check config prometheus.yml
promtool test rules vigil.rules.test.yml

python3 - <<'PY'
import json, sys
d = json.load(open("grafana/vigil-dashboard.json"))
assert d.get("uid") == "vigil" and d.get("panels"), "dashboard has no uid or panels"
for p in d["panels"]:
    for t in p.get("targets", []):
        assert t.get("expr"), f"panel {p.get('title')!r} has a target without expr"
print(f"grafana/vigil-dashboard.json: {len(d['panels'])} panels, valid JSON")
PY
# Provisioning files are YAML; promtool has no YAML checker for them, so
# only require that they exist and are not empty.
for f in grafana/provisioning/datasources/prometheus.yml grafana/provisioning/dashboards/vigil.yml; do
  [ -s "$f" ] || { echo "check-ops: $f missing or empty" >&2; exit 1; }
done
echo "check-ops: ok"
