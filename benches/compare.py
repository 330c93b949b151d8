#!/usr/bin/env python3
"""Agreement between two JSON-lines detection files (vigil vs reference).

  compare.py A.jsonl B.jsonl [--min-score 0.3] [--iou 0.9] [--require 0.97]
             [--min-boxes N] [--same-keys]

Lines are matched by "frame" (video) or "source" (images). A box of A with
score >= min-score agrees when B has a box of the same class with IoU >= iou
(greedy, each B box used once); and the same the other way round. Prints the
share of agreeing boxes both ways and exits 1 below --require (default 0.97).

Two answers with no boxes agree perfectly, so a check that means something also
gives --min-boxes (each side must have at least that many boxes with score >=
min-score) and --same-keys (both files hold the same frames / sources; a frame
missing on one side is a failure, not a smaller denominator).
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
    ap.add_argument("--min-boxes", type=int, default=0,
                    help="fail unless each side has at least this many boxes with score >= min-score")
    ap.add_argument("--same-keys", action="store_true",
                    help="fail unless both files hold exactly the same frames / sources")
    a = ap.parse_args()
    A, B = load(a.a), load(a.b)
    ok1, t1 = agree(A, B, a.min_score, a.iou)
    ok2, t2 = agree(B, A, a.min_score, a.iou)
    r1 = ok1 / t1 if t1 else 1.0
    r2 = ok2 / t2 if t2 else 1.0
    problems = []
    if min(r1, r2) < a.require:
        problems.append(f"agreement {min(r1, r2):.4f} < {a.require}")
    if min(t1, t2) < a.min_boxes:
        problems.append(f"only {min(t1, t2)} boxes with score >= {a.min_score} on one side (< {a.min_boxes})")
    if a.same_keys and set(A) != set(B):
        only_a = sorted(map(str, set(A) - set(B)))[:5]
        only_b = sorted(map(str, set(B) - set(A)))[:5]
        problems.append(f"different frames/sources: only in A {only_a}, only in B {only_b}")
    print(json.dumps({"a_in_b": r1, "a_boxes": t1, "b_in_a": r2, "b_boxes": t2, "keys_a": len(A),
                      "keys_b": len(B), "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
