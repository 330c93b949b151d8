#!/bin/bash
# Container health check for the vigil images (Dockerfile HEALTHCHECK, compose):
# GET /healthz on the local listener and succeed on HTTP 200. It speaks HTTP
# through bash's /dev/tcp, so the runtime images need no curl or wget (fewer
# packages, fewer CVEs to patch). `vigil serve` and `vigil worker` both answer
# /healthz as soon as the listener is up, before the model is loaded.
#
# Port: VIGIL_HEALTHCHECK_PORT, else the port of VIGIL_SERVER_LISTEN (the env
# override of server.listen), else 8080, the port of the configs in docker/.
# Path: VIGIL_HEALTHCHECK_PATH (default /healthz; /readyz checks readiness).
set -u
listen=${VIGIL_SERVER_LISTEN:-}
port=${VIGIL_HEALTHCHECK_PORT:-${listen:+${listen##*:}}}
port=${port:-8080}
path=${VIGIL_HEALTHCHECK_PATH:-/healthz}

{ exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || { echo "healthcheck: nothing listens on 127.0.0.1:$port" >&2; exit 1; }
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
# The status line, e.g. "HTTP/1.1 200 OK"; the timeout guards a stuck server
# (Docker's --timeout would kill us anyway, but with no message).
read -r -t 5 _proto code _ <&3 || { echo "healthcheck: no HTTP answer on :$port$path" >&2; exit 1; }
exec 3<&-
[ "$code" = 200 ] || { echo "healthcheck: $path answered $code" >&2; exit 1; }
