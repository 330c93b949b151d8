"""Schemathesis hooks for scripts/fuzz-api.sh.

Camera URLs must never leave this machine: `POST /v1/streams`,
`POST /v1/probe` and a `PATCH /v1/streams/{id}` that changes `url` make the
daemon connect to whatever `url` says. Every schema-valid URL the fuzzer
generates is rewritten, just before the request is sent, to a URL on
127.0.0.1 at a port where nothing listens (the daemon then reconnects with
backoff, which is what a dead camera looks like). Invalid values (not a
string, or a string the document's pattern refuses) are left as they are,
so the server's refusal of them is still checked. Nothing else is changed.
"""

import os
import re

import schemathesis

# The document's pattern for a stream URL (StreamConfigDoc.url).
URL_PATTERN = re.compile(r"^(rtsp|rtsps|http|https)://\S+$")
DEAD_PORT = os.environ.get("VIGIL_FUZZ_DEAD_PORT", "9")


def _local(url):
    scheme = url.split("://", 1)[0]
    return f"{scheme}://127.0.0.1:{DEAD_PORT}/fuzz"


@schemathesis.hook
def before_call(context, case, **kwargs):
    # POST /v1/probe (the console's camera test) opens its url too.
    op = (case.operation.method.upper(), case.operation.path)
    if op not in (("POST", "/v1/streams"), ("POST", "/v1/probe"), ("PATCH", "/v1/streams/{id}")):
        return
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        if URL_PATTERN.match(body["url"]):
            body["url"] = _local(body["url"])
