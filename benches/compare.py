#!/usr/bin/env python3
"""Agreement between two JSON-lines detection files (vigil vs reference).

  compare.py A.jsonl B.jsonl [--min-score 0.3] [--iou 0.9]

Lines are matched by "frame" (video) or "source" (images). A box of A with
score >= min-score agrees when B has a box of the same class with IoU >= iou
(greedy, each B box used once); and the same the other way round. Prints the
share of agreeing boxes both ways and exits 1 below --require (default 0.97).
"""
import argparse
import json
import sys


def load(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                d = json.loads(line)
                out[d.get("frame", d.get("source"))] = d["detections"]
    return out


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def agree(xs, ys, min_score, thr):
    total = ok = 0
    for k, dets in xs.items():
        others = list(ys.get(k, []))
        used = set()
        for d in sorted(dets, key=lambda d: -d["score"]):
            if d["score"] < min_score:
                continue
            total += 1
            best, bi = 0.0, None
            for j, o in enumerate(others):
                if j in used or o["class_id"] != d["class_id"]:
                    continue
                v = iou(d["bbox"], o["bbox"])
                if v > best:
                    best, bi = v, j
            if best >= thr:
                ok += 1
                used.add(bi)
    return ok, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--min-score", type=float, default=0.3)
    ap.add_argument("--iou", type=float, default=0.9)
    ap.add_argument("--require", type=float, default=0.97)
    a = ap.parse_args()
    A, B = load(a.a), load(a.b)
    ok1, t1 = agree(A, B, a.min_score, a.iou)
    ok2, t2 = agree(B, A, a.min_score, a.iou)
    r1 = ok1 / t1 if t1 else 1.0
    r2 = ok2 / t2 if t2 else 1.0
    print(json.dumps({"a_in_b": r1, "a_boxes": t1, "b_in_a": r2, "b_boxes": t2, "keys_a": len(A), "keys_b": len(B)}))
    return 0 if min(r1, r2) >= a.require else 1


if __name__ == "__main__":
    sys.exit(main())
