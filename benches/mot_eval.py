#!/usr/bin/env python3
"""vigil's ByteTrack against established Python ByteTracks on public MOT ground truth.

Ground truth: the MOTChallenge sequences that py-motmetrics ships in its package
data (2D MOT 2015 train: TUD-Campus, TUD-Stadtmitte; 25 fps, 640x480). From each
GT file, noisy detections are made deterministically (seeded): box jitter
proportional to size, random misses, per-object occlusion gaps, a score model
with a low-confidence band, and false positives (random boxes and shifted
near-duplicates of true boxes), at three noise levels and several seeds.

The very same det files are fed to

* ``vigil track --mot DET --fps F --config CFG`` (crates/vigil-track), and
* ``supervision`` ``sv.ByteTrack`` (0.30.x, the last release that has it), and/or
* ``ultralytics`` ``BYTETracker`` (ultralytics.trackers.byte_tracker),

and every result is scored with py-motmetrics (CLEAR-MOT + IDF1, IoU >= 0.5,
the MOTChallenge criterion). vigil is run once per Python implementation with
its ``[tracker]`` settings set to that implementation's *effective* settings
(see ``PY_SETTINGS`` / ``vigil_matching``), plus once with vigil's defaults for
information. Exit status 1 when, on the aggregate over all sequences, noise
levels and seeds, a matched vigil run's MOTA or IDF1 is more than ``--margin``
(0.005) below the Python implementation it is matched to; 2 when no Python
implementation could be run.

Python trackers run in a worker subprocess (``--worker``), so ultralytics,
which pulls in torch, may live in a separate virtualenv
(``--ultralytics-python``). See benches/README-mot.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Every child process is bounded: a hung tracker fails the run (the accuracy
# stage of `make test` runs this script) instead of stalling it.
STEP_TIMEOUT_S = 120

# --------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------

# seqinfo of the MOTChallenge 2D MOT 2015 release (not shipped by motmetrics).
SEQUENCES = {
    "TUD-Campus": {"fps": 25.0, "width": 640, "height": 480},
    "TUD-Stadtmitte": {"fps": 25.0, "width": 640, "height": 480},
}


def motmetrics_data_dir() -> Path:
    import motmetrics

    return Path(motmetrics.__file__).resolve().parent / "data"


def load_gt(path: Path) -> np.ndarray:
    """GT rows ``frame,id,x,y,w,h,conf,...`` -> array (frame, id, x, y, w, h),
    keeping only rows with conf != 0 (the MOTChallenge 'consider' flag)."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    rows = rows[rows[:, 6] != 0]
    return rows[:, :6].copy()


# --------------------------------------------------------------------------
# Noisy detections
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    name: str
    pos_sigma: float  # centre jitter sigma, fraction of w (x) / h (y)
    size_sigma: float  # log-normal sigma on w and h
    miss: float  # independent per-frame miss probability
    gap_start: float  # per object per frame probability an occlusion gap starts
    gap_len: tuple[int, int]  # occlusion gap length in frames, inclusive range
    low_frac: float  # fraction of true boxes scored in the low band
    fp_rate: float  # false positives per frame = Poisson(fp_rate * objects in frame)


NOISE_LEVELS = {
    "low": Noise("low", 0.03, 0.03, 0.05, 0.005, (3, 8), 0.10, 0.03),
    "medium": Noise("medium", 0.05, 0.05, 0.10, 0.010, (3, 15), 0.20, 0.05),
    "high": Noise("high", 0.08, 0.08, 0.20, 0.020, (5, 25), 0.30, 0.10),
}


def make_detections(gt: np.ndarray, seq: dict, noise: Noise, seed: int, tag: str) -> np.ndarray:
    """Deterministic noisy detections from GT. Returns rows (frame, x, y, w, h, score)."""
    rng = np.random.default_rng([zlib.crc32(tag.encode()), seed])
    W, H = seq["width"], seq["height"]
    out = []
    # True objects, one GT track at a time (ids sorted) so the draws are stable.
    for oid in np.unique(gt[:, 1]):
        rows = gt[gt[:, 1] == oid]
        rows = rows[np.argsort(rows[:, 0])]
        gap_left = 0
        for f, _, x, y, w, h in rows:
            if gap_left > 0:
                gap_left -= 1
                continue
            if rng.random() < noise.gap_start:
                gap_left = int(rng.integers(noise.gap_len[0], noise.gap_len[1] + 1)) - 1
                continue
            if rng.random() < noise.miss:
                continue
            cx = x + w / 2 + rng.normal(0, noise.pos_sigma * w)
            cy = y + h / 2 + rng.normal(0, noise.pos_sigma * h)
            nw = w * math.exp(rng.normal(0, noise.size_sigma))
            nh = h * math.exp(rng.normal(0, noise.size_sigma))
            if rng.random() < noise.low_frac:
                score = rng.uniform(0.1, 0.5)
            else:
                score = rng.uniform(0.5, 0.95)
            out.append((f, cx - nw / 2, cy - nh / 2, nw, nh, score))
    # False positives, frame by frame.
    sizes = gt[:, 4:6]
    for f in np.unique(gt[:, 0]):
        here = gt[gt[:, 0] == f]
        for _ in range(int(rng.poisson(noise.fp_rate * len(here)))):
            if rng.random() < 0.5:
                # Random box of a plausible pedestrian size anywhere in the image.
                w, h = sizes[rng.integers(len(sizes))]
                x = rng.uniform(0, max(1.0, W - w))
                y = rng.uniform(0, max(1.0, H - h))
                score = rng.uniform(0.1, 0.6)
            else:
                # Near-duplicate of a true box, shifted by a third to 2/3 of its width.
                _, _, x, y, w, h = here[rng.integers(len(here))]
                x = x + rng.choice([-1.0, 1.0]) * rng.uniform(0.33, 0.66) * w
                y = y + rng.normal(0, 0.05 * h)
                score = rng.uniform(0.1, 0.45)
            out.append((f, x, y, w, h, score))
    det = np.array(out, dtype=np.float64).reshape(-1, 6)
    det = det[(det[:, 3] > 1) & (det[:, 4] > 1)]
    order = np.lexsort((det[:, 1], det[:, 0]))
    return det[order]


def write_det(path: Path, det: np.ndarray) -> None:
    with open(path, "w") as fh:
        for f, x, y, w, h, s in det:
            fh.write(f"{int(f)},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1\n")


def read_det(path: str) -> dict[int, np.ndarray]:
    """det file -> {frame: rows (x1, y1, x2, y2, score)}."""
    by_frame: dict[int, list] = {}
    with open(path) as fh:
        for line in fh:
            p = line.strip().split(",")
            if len(p) < 7:
                continue
            f = int(float(p[0]))
            x, y, w, h, s = map(float, p[2:7])
            by_frame.setdefault(f, []).append((x, y, x + w, y + h, s))
    return {f: np.array(v, dtype=np.float32) for f, v in by_frame.items()}


def read_results(path: Path) -> np.ndarray:
    """MOT results -> array (frame, id, x, y, w, h)."""
    if path.stat().st_size == 0:
        return np.zeros((0, 6))
    return np.loadtxt(path, delimiter=",", ndmin=2)[:, :6]


# --------------------------------------------------------------------------
# Python ByteTrack implementations (run in a worker subprocess)
# --------------------------------------------------------------------------

# The settings each Python tracker is run with. Both are given the values of
# vigil's defaults where they expose them (0.25 / 0.1 / 0.25 / 0.8 / 30 / fuse).
PY_SETTINGS = {
    # sv.ByteTrack(...). Hard-wired inside supervision: low band score > 0.1,
    # fuse_score always on, new tracks need score >= activation + 0.1 (0.35),
    # buffer int(frame_rate / 30 * lost_track_buffer), duplicate IoU dist 0.05.
    "supervision": {
        "track_activation_threshold": 0.25,
        "lost_track_buffer": 30,
        "minimum_matching_threshold": 0.8,
        "minimum_consecutive_frames": 1,
    },
    # ultralytics BYTETracker(args) with cfg/trackers/bytetrack.yaml values.
    # ultralytics >= 8.3.x does not scale track_buffer by the frame rate.
    "ultralytics": {
        "track_high_thresh": 0.25,
        "track_low_thresh": 0.1,
        "new_track_thresh": 0.25,
        "track_buffer": 30,
        "match_thresh": 0.8,
        "fuse_score": True,
    },
}


def run_supervision(det: dict, nframes: int, fps: float, out_path: str) -> tuple[str, dict]:
    import supervision as sv

    if not hasattr(sv, "ByteTrack"):
        raise RuntimeError(
            f"supervision {sv.__version__} has no ByteTrack (removed in 0.31); "
            "install supervision==0.30.9"
        )
    import warnings

    warnings.filterwarnings("ignore")
    tracker = sv.ByteTrack(frame_rate=fps, **PY_SETTINGS["supervision"])
    effective = {
        "high_thresh": tracker.track_activation_threshold,  # score >= this
        "low_thresh": 0.1,  # hard-coded: score > 0.1
        "new_track_thresh": tracker.det_thresh,
        "match_thresh": tracker.minimum_matching_threshold,
        "buffer_frames": tracker.max_time_lost,
        "fuse_score": True,  # hard-coded
    }
    empty = np.zeros((0, 5), dtype=np.float32)
    with open(out_path, "w") as fh:
        for f in range(1, nframes + 1):
            # update_with_tensors returns the confirmed tracks matched this frame;
            # their .tlbr is the Kalman state, as in the reference's MOT output
            # (update_with_detections would instead echo the input boxes).
            for t in tracker.update_with_tensors(det.get(f, empty)):
                x1, y1, x2, y2 = (float(v) for v in t.tlbr)
                fh.write(
                    f"{f},{int(t.external_track_id)},{x1:.2f},{y1:.2f},"
                    f"{x2 - x1:.2f},{y2 - y1:.2f},{float(t.score):.3f},-1,-1,-1\n"
                )
    return f"supervision {sv.__version__}", effective


class _UltralyticsDets:
    """The slice of ultralytics' Boxes API that BYTETracker reads."""

    def __init__(self, xyxy_score: np.ndarray):
        xyxy = xyxy_score[:, :4].astype(np.float32)
        self.conf = xyxy_score[:, 4].astype(np.float32)
        self.cls = np.zeros(len(xyxy), dtype=np.float32)
        self.xyxy = xyxy
        self.xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx):
        return _UltralyticsDets(np.concatenate([self.xyxy, self.conf[:, None]], axis=1)[idx])


def run_ultralytics(det: dict, nframes: int, fps: float, out_path: str) -> tuple[str, dict]:
    import types

    os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics
    from ultralytics.trackers.byte_tracker import BYTETracker

    args = types.SimpleNamespace(**PY_SETTINGS["ultralytics"])
    try:
        tracker = BYTETracker(args, frame_rate=round(fps))
    except TypeError:  # recent ultralytics dropped frame_rate (buffer no longer scaled)
        tracker = BYTETracker(args)
    effective = {
        "high_thresh": args.track_high_thresh,
        "low_thresh": args.track_low_thresh,
        "new_track_thresh": args.new_track_thresh,
        "match_thresh": args.match_thresh,
        "buffer_frames": int(getattr(tracker, "max_frames_lost", getattr(tracker, "max_time_lost", 0))),
        "fuse_score": bool(args.fuse_score),
    }
    empty = np.zeros((0, 5), dtype=np.float32)
    with open(out_path, "w") as fh:
        for f in range(1, nframes + 1):
            res = tracker.update(_UltralyticsDets(det.get(f, empty)))
            for row in res:
                x1, y1, x2, y2, tid, score = (float(v) for v in row[:6])
                fh.write(
                    f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.3f},-1,-1,-1\n"
                )
    return f"ultralytics {ultralytics.__version__}", effective


PY_RUNNERS = {"supervision": run_supervision, "ultralytics": run_ultralytics}


def worker(impl: str, jobs_path: str) -> int:
    """Runs one Python tracker over every job in a JSON list; prints its version."""
    jobs = json.loads(Path(jobs_path).read_text())
    version, effective = None, {}
    for job in jobs:
        version, eff = PY_RUNNERS[impl](read_det(job["det"]), job["frames"], job["fps"], job["out"])
        effective[repr(float(job["fps"]))] = eff
    print(json.dumps({"version": version, "effective": effective}))
    return 0


# --------------------------------------------------------------------------
# vigil
# --------------------------------------------------------------------------

VIGIL_DEFAULTS = {
    "high_thresh": 0.25,
    "low_thresh": 0.1,
    "new_track_thresh": 0.25,
    "match_thresh": 0.8,
    "track_buffer": 30,
    "fuse_score": True,
}


def buffer_for(frames: int, fps: float) -> int:
    """The vigil track_buffer that makes floor(fps / 30 * track_buffer) == frames."""
    tb = max(1, math.ceil(frames * 30.0 / fps))
    while math.floor(fps / 30.0 * (tb - 1)) >= frames and tb > 1:
        tb -= 1
    while math.floor(fps / 30.0 * tb) < frames:
        tb += 1
    return tb


def vigil_matching(eff: dict, fps: float) -> dict:
    """vigil [tracker] settings equal to a Python tracker's effective ones (as its
    worker reported them for this fps)."""
    cfg = {k: eff[k] for k in ("high_thresh", "low_thresh", "new_track_thresh", "match_thresh", "fuse_score")}
    cfg["new_track_thresh"] = round(float(cfg["new_track_thresh"]), 6)  # 0.25 + 0.1 in floats
    # vigil keeps a lost track floor(fps / 30 * track_buffer) frames.
    cfg["track_buffer"] = buffer_for(int(eff["buffer_frames"]), fps)
    return cfg


def write_vigil_config(path: Path, cfg: dict) -> None:
    lines = ["[tracker]"]
    for k, v in cfg.items():
        lines.append(f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    path.write_text("\n".join(lines) + "\n")


def find_vigil(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    cands = [REPO / "target" / p / "vigil" for p in ("release", "debug")]
    cands = [c for c in cands if c.exists()]
    if not cands:
        sys.exit("no vigil binary: run `cargo build -p vigil` (or pass --vigil PATH)")
    return max(cands, key=lambda c: c.stat().st_mtime)


def run_vigil(binary: Path, config: Path, det: Path, fps: float, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    with open(out, "w") as fh:
        try:
            r = subprocess.run(
                [str(binary), "--config", str(config), "--log-format", "json", "track",
                 "--mot", str(det), "--fps", repr(fps)],
                stdout=fh, stderr=subprocess.PIPE, env=env, text=True, timeout=STEP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            sys.exit(f"vigil track did not finish within {STEP_TIMEOUT_S} s on {det}")
    if r.returncode != 0:
        sys.exit(f"vigil failed on {det}:\n{r.stderr}")


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------

METRICS = [
    "mota", "idf1", "num_switches", "num_false_positives", "num_misses",
    "mostly_tracked", "mostly_lost", "num_fragmentations", "motp", "num_unique_objects",
]


def iou_dist(a: np.ndarray, b: np.ndarray, max_d: float = 0.5) -> np.ndarray:
    """1 - IoU between tlwh boxes; NaN (no match allowed) beyond max_d."""
    if len(a) == 0 or len(b) == 0:
        return np.empty((len(a), len(b)))
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None).prod(axis=2)
    union = a[:, None, 2:].prod(axis=2) + b[None, :, 2:].prod(axis=2) - inter
    d = 1 - inter / np.maximum(union, 1e-12)
    d[d > max_d] = np.nan
    return d


def accumulate(gt: np.ndarray, res: np.ndarray):
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(np.unique(gt[:, 0]), np.unique(res[:, 0]) if len(res) else [])
    for f in frames.astype(int):
        g = gt[gt[:, 0] == f]
        h = res[res[:, 0] == f] if len(res) else res
        acc.update(g[:, 1].astype(int), h[:, 1].astype(int), iou_dist(g[:, 2:6], h[:, 2:6]), frameid=f)
    return acc


def summarize(accs: list) -> dict:
    import motmetrics as mm

    mh = mm.metrics.create()
    df = mh.compute_many(accs, metrics=METRICS, names=[str(i) for i in range(len(accs))],
                         generate_overall=True)
    row = df.loc["OVERALL"]
    return {m: float(row[m]) for m in METRICS}


def fmt_row(label: list[str], m: dict) -> str:
    cells = label + [
        f"{m['mota']:.3f}", f"{m['idf1']:.3f}", str(int(m["num_switches"])),
        str(int(m["num_false_positives"])), str(int(m["num_misses"])),
        str(int(m["mostly_tracked"])), str(int(m["mostly_lost"])), str(int(m["num_fragmentations"])),
    ]
    return "| " + " | ".join(cells) + " |"


HEAD = ["MOTA", "IDF1", "IDsw", "FP", "FN", "MT", "ML", "Frag"]


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "JOBS_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--vigil", help="vigil binary (default: newest of target/{release,debug}/vigil)")
    ap.add_argument("--impl", default="supervision,ultralytics",
                    help="Python implementations to compare with (comma list; default: %(default)s)")
    ap.add_argument("--ultralytics-python",
                    help="interpreter with ultralytics installed (default: this one)")
    ap.add_argument("--supervision-python", help="interpreter with supervision installed (default: this one)")
    ap.add_argument("--seqs", default=",".join(SEQUENCES), help="sequences (default: %(default)s)")
    ap.add_argument("--levels", default=",".join(NOISE_LEVELS), help="noise levels (default: %(default)s)")
    ap.add_argument("--seeds", type=int, default=20, help="seeds per sequence and level (default: %(default)s)")
    ap.add_argument("--margin", type=float, default=0.005,
                    help="allowed MOTA/IDF1 shortfall of vigil on the aggregate (default: %(default)s)")
    ap.add_argument("--workdir", help="keep det/result files here (default: a temporary directory)")
    ap.add_argument("--require-all", action="store_true",
                    help="fail (exit 2) unless every --impl could be run")
    args = ap.parse_args()

    if args.worker:
        return worker(*args.worker)

    t0 = time.time()
    impls = [i for i in args.impl.split(",") if i]
    for i in impls:
        if i not in PY_RUNNERS:
            ap.error(f"unknown --impl {i!r}; known: {', '.join(PY_RUNNERS)}")
    seqs = args.seqs.split(",")
    levels = args.levels.split(",")
    vigil = find_vigil(args.vigil)
    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="vigil-mot-")
        work = Path(tmp)

    try:
        data = motmetrics_data_dir()
        gts = {s: load_gt(data / s / "gt.txt") for s in seqs}

        # 1. detections
        runs = []  # (seq, level, seed, det_path)
        for s in seqs:
            for lv in levels:
                for seed in range(args.seeds):
                    det = make_detections(gts[s], SEQUENCES[s], NOISE_LEVELS[lv], seed, f"{s}/{lv}")
                    p = work / f"{s}_{lv}_{seed}.det.txt"
                    write_det(p, det)
                    runs.append((s, lv, seed, p))

        # 2. trackers: name -> {(seq, level, seed): result path}
        results: dict[str, dict] = {}
        versions: dict[str, str] = {}
        effective: dict[str, dict] = {}
        settings: dict[str, str] = {}
        skipped: dict[str, str] = {}

        for impl in impls:
            py = getattr(args, f"{impl}_python") or sys.executable
            jobs, paths = [], {}
            for s, lv, seed, det in runs:
                out = work / f"{s}_{lv}_{seed}.{impl}.txt"
                nframes = int(gts[s][:, 0].max())
                jobs.append({"det": str(det), "out": str(out), "fps": SEQUENCES[s]["fps"], "frames": nframes})
                paths[(s, lv, seed)] = out
            jobs_path = work / f"jobs.{impl}.json"
            jobs_path.write_text(json.dumps(jobs))
            try:
                r = subprocess.run([py, str(Path(__file__).resolve()), "--worker", impl, str(jobs_path)],
                                   capture_output=True, text=True, timeout=STEP_TIMEOUT_S * 4)
            except subprocess.TimeoutExpired:
                sys.exit(f"the {impl} worker did not finish within {STEP_TIMEOUT_S * 4} s")
            if r.returncode != 0:
                last = (r.stderr.strip().splitlines() or ["?"])[-1]
                skipped[impl] = f"{py}: {last}"
                print(f"warning: {impl} not run ({skipped[impl]})", file=sys.stderr)
                continue
            reply = json.loads(r.stdout.strip().splitlines()[-1])
            versions[impl] = reply["version"]
            effective[impl] = reply["effective"]
            settings[impl] = ", ".join(f"{k}={v}" for k, v in PY_SETTINGS[impl].items())
            results[impl] = paths

        if not results:
            print("no Python ByteTrack implementation could be run: " + "; ".join(
                f"{k}: {v}" for k, v in skipped.items()), file=sys.stderr)
            return 2

        vigil_variants = {"vigil (defaults)": None}
        for impl in results:
            vigil_variants[f"vigil (= {impl})"] = impl
        for name, impl in vigil_variants.items():
            paths = {}
            for s, lv, seed, det in runs:
                fps = SEQUENCES[s]["fps"]
                cfg = VIGIL_DEFAULTS if impl is None else vigil_matching(effective[impl][repr(float(fps))], fps)
                tag = "defaults" if impl is None else impl
                cfg_path = work / f"vigil.{tag}.{s}.toml"
                write_vigil_config(cfg_path, cfg)
                out = work / f"{s}_{lv}_{seed}.vigil-{tag}.txt"
                run_vigil(vigil, cfg_path, det, fps, out)
                paths[(s, lv, seed)] = out
            results[name] = paths
            shown = VIGIL_DEFAULTS if impl is None else cfg  # the last sequence's; same fps here
            settings[name] = ", ".join(f"{k}={v}" for k, v in shown.items())
            if impl is not None:
                settings[impl] += " (effective: " + ", ".join(
                    f"{k}={v}" for k, v in effective[impl][repr(float(fps))].items()) + ")"

        # 3. scoring
        accs = {name: {k: accumulate(gts[k[0]], read_results(p)) for k, p in paths.items()}
                for name, paths in results.items()}
        order = []
        for impl in impls:
            if impl in versions:
                order += [impl, f"vigil (= {impl})"]
        order.append("vigil (defaults)")

        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        print(f"# vigil ByteTrack vs Python ByteTrack on MOT ground truth + synthetic detector noise\n")
        print(f"- vigil: `{vigil.relative_to(REPO) if vigil.is_relative_to(REPO) else vigil}` (git {rev or '?'})")
        for impl, v in versions.items():
            print(f"- {v}")
        import motmetrics

        print(f"- motmetrics {motmetrics.__version__}; GT: "
              + ", ".join(f"{s} ({len(np.unique(gts[s][:, 1]))} ids, {int(gts[s][:, 0].max())} frames, "
                          f"{SEQUENCES[s]['fps']:g} fps)" for s in seqs)
              + " from motmetrics/data (MOT15 train)")
        print(f"- noise levels: " + "; ".join(
            f"{n.name}: jitter {n.pos_sigma:.0%}/{n.size_sigma:.0%}, miss {n.miss:.0%}, "
            f"gap p={n.gap_start} len {n.gap_len[0]}-{n.gap_len[1]}, low-score {n.low_frac:.0%}, "
            f"FP {n.fp_rate:.0%}/object" for n in (NOISE_LEVELS[l] for l in levels)))
        print(f"- seeds per sequence and level: {args.seeds}; each row sums its seeds' events")
        print("- settings:")
        for name in order:
            print(f"  - {name}: {settings[name]}")
        for impl, why in skipped.items():
            print(f"- {impl}: NOT RUN ({why})")
        print()

        print("| sequence | noise | tracker | " + " | ".join(HEAD) + " |")
        print("|" + "---|" * (3 + len(HEAD)))
        for s in seqs:
            for lv in levels:
                for name in order:
                    group = [a for k, a in accs[name].items() if k[0] == s and k[1] == lv]
                    print(fmt_row([s, lv, name], summarize(group)))
        print()
        print("**Aggregate** (all sequences, noise levels and seeds)\n")
        print("| tracker | " + " | ".join(HEAD) + " |")
        print("|" + "---|" * (1 + len(HEAD)))
        overall = {}
        for name in order:
            overall[name] = summarize(list(accs[name].values()))
            print(fmt_row([name], overall[name]))
        print()

        failed = False
        for impl in versions:
            v, p = overall[f"vigil (= {impl})"], overall[impl]
            d_mota, d_idf1 = v["mota"] - p["mota"], v["idf1"] - p["idf1"]
            ok = d_mota >= -args.margin and d_idf1 >= -args.margin
            failed |= not ok
            print(f"- vigil vs {impl}: MOTA {d_mota:+.4f}, IDF1 {d_idf1:+.4f}, "
                  f"IDsw {int(v['num_switches']) - int(p['num_switches']):+d} -> {'PASS' if ok else 'FAIL'}")
        print(f"\n({time.time() - t0:.0f} s)")
        if args.require_all and skipped:
            return 2
        return 1 if failed else 0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
