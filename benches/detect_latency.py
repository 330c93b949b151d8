#!/usr/bin/env python3
"""Latency and throughput of `POST /v1/detect` on a running `vigil serve`.

  detect_latency.py URL IMAGE [--requests N] [--concurrency C ...]

For each concurrency level C, C client threads send N requests in total (each
a fresh connection, like curl) and the script prints P50/P95/P99 latency and
requests per second as one JSON line. Standard library only.
"""
import argparse
import json
import statistics
import threading
import time
import urllib.request


def one(url, body):
    t = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}")
    return time.perf_counter() - t


def run(url, body, n, c):
    lat = []
    lock = threading.Lock()
    left = [n]

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            d = one(url, body)
            with lock:
                lat.append(d)

    threads = [threading.Thread(target=worker) for _ in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    q = statistics.quantiles(sorted(lat), n=100)
    return {"concurrency": c, "requests": n, "p50_ms": 1000 * statistics.median(lat),
            "p95_ms": 1000 * q[94], "p99_ms": 1000 * q[98], "rps": n / wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url", help="e.g. http://127.0.0.1:8080/v1/detect")
    ap.add_argument("image")
    ap.add_argument("--requests", type=int, default=80)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    a = ap.parse_args()
    body = open(a.image, "rb").read()
    for _ in range(3):
        one(a.url, body)  # warm-up
    for c in a.concurrency:
        print(json.dumps(run(a.url, body, a.requests, c)))


if __name__ == "__main__":
    main()
