#!/usr/bin/env python3
"""Job throughput of the two queue backends, side by side in one run.

  local  -- one `vigil serve` with [queue] backend = "local" (SQLite), jobs.workers = 1
  nats-W -- a `vigil serve` API node + W `vigil worker` processes on a real
            nats-server (JetStream), for each W given

Each configuration gets the same JOBS uploads of the same clip (the first
FRAMES frames of the sample video, H.264) and is timed from the first upload
to the last job succeeded. Prints jobs/minute and frames/second per
configuration and the ratio to `local`.

Usage: benches/scale_out.py [--jobs 8] [--frames 100] [--every 1] [--workers 1 2]
Needs a release build (cargo build --release -p vigil), `make setup`
(nats-server, ffmpeg, the model). Only 127.0.0.1 is used.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIGIL = os.path.join(ROOT, "target", "release", "vigil")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


def wait_ready(addr, procs, limit=120):
    end = time.time() + limit
    while time.time() < end:
        for p in procs:
            if p.poll() is not None:
                sys.exit(f"a vigil process exited early ({p.returncode})")
        try:
            if http("GET", f"http://{addr}/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{addr} not ready within {limit} s")


def start(work, name, command, config):
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(config)
    log = open(os.path.join(work, f"{name}.log"), "w")
    env = dict(os.environ, RUST_LOG="warn")
    return subprocess.Popen([VIGIL, command, "--config", path], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)


def config(addr, store, queue):
    return (f'[server]\nlisten = "{addr}"\nmax_upload_mb = 512\n[storage]\ndir = "{store}"\n'
            f'[model]\ndevice = "cpu"\n[batch]\nmax_size = 1\n[jobs]\nworkers = 1\nqueue_size = 256\n{queue}')


def run_jobs(api, clip, jobs, every):
    body = open(clip, "rb").read()
    t0 = time.time()
    ids = []
    for _ in range(jobs):
        status, resp = http("POST", f"http://{api}/v1/jobs?every={every}&track=false", body)
        assert status == 202, resp
        ids.append(json.loads(resp)["id"])
    pending = set(ids)
    frames = 0
    while pending:
        if time.time() - t0 > 3600:
            sys.exit("jobs not finished within an hour")
        for i in list(pending):
            j = json.loads(http("GET", f"http://{api}/v1/jobs/{i}")[1])
            if j["status"] == "failed":
                sys.exit(f"job failed: {j}")
            if j["status"] == "succeeded":
                pending.discard(i)
                frames += j["frames_done"]
        time.sleep(0.2)
    return time.time() - t0, frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    if not os.access(VIGIL, os.X_OK):
        sys.exit("build first: cargo build --release -p vigil")
    nats_bin = shutil.which("nats-server") or "/usr/sbin/nats-server"
    work = tempfile.mkdtemp(prefix="vigil-scale-")
    clip = os.path.join(work, "clip.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", os.path.join(ROOT, "data/video/vtest.avi"),
                    "-frames:v", str(a.frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", clip], check=True)
    results = {}
    procs = []
    try:
        # local
        addr = f"127.0.0.1:{free_port()}"
        p = start(work, "local", "serve", config(addr, os.path.join(work, "local-store"), ""))
        procs = [p]
        wait_ready(addr, procs)
        results["local"] = run_jobs(addr, clip, a.jobs, a.every)
        p.terminate(); p.wait(20)
        for w in a.workers:
            port = free_port()
            nats = subprocess.Popen([nats_bin, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                                     os.path.join(work, f"js-{w}")], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            q = f'[queue]\nbackend = "nats"\nurl = "nats://127.0.0.1:{port}"\n'
            api = f"127.0.0.1:{free_port()}"
            procs = [nats, start(work, f"api-{w}", "serve", config(api, os.path.join(work, f"api-{w}"), q))]
            addrs = [api]
            for i in range(w):
                wa = f"127.0.0.1:{free_port()}"
                procs.append(start(work, f"worker-{w}-{i}", "worker",
                                   config(wa, os.path.join(work, f"w-{w}-{i}"), q)))
                addrs.append(wa)
            for ad in addrs:
                wait_ready(ad, procs[1:])
            results[f"nats-{w}"] = run_jobs(api, clip, a.jobs, a.every)
            for p in reversed(procs):
                p.terminate()
                p.wait(20)
            procs = []
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)
    base = results["local"][0]
    print(f"jobs={a.jobs} frames/job={a.frames} every={a.every} cpus={os.cpu_count()}")
    for k, (secs, frames) in results.items():
        print(f"  {k:8s} {secs:7.1f} s  {a.jobs / secs * 60:6.1f} jobs/min  "
              f"{frames / secs:6.1f} frames/s  time vs local {secs / base:.3f}")


if __name__ == "__main__":
    main()
