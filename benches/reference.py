#!/usr/bin/env python3
"""Independent Ultralytics-style reference pipeline for vigil's benchmarks and
agreement checks: onnxruntime + OpenCV + numpy, nothing from vigil.

  reference.py detect MODEL IMAGE...            JSON lines like `vigil detect`
  reference.py video MODEL VIDEO [--every N]    JSON lines like `vigil annotate --no-track --jsonl`
  reference.py bench MODEL VIDEO [--frames N] [--threads T] [--batch B]
                                                throughput of decode+pre+infer+post (frames/s)

Pre/post-processing follows Ultralytics: LetterBox (pad 114, centred,
INTER_LINEAR), BGR->RGB, /255, NCHW; boxes with best-class score > conf,
class-aware NMS at IoU 0.45 (offset trick), max 300, scale_boxes + clip.
"""
import argparse
import json
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

COCO_FALLBACK = None


def letterbox(img, size=640):
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    new_unpad = int(round(w * r)), int(round(h * r))
    dw, dh = (size - new_unpad[0]) / 2, (size - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return img, r, left, top


def to_tensor(img):
    return np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32) / 255.0


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ov = inter / (areas[i] + areas[order[1:]] - inter + 1e-12)
        order = order[1:][ov <= iou]
    return np.array(keep, dtype=np.int64)


def postprocess(out, r, left, top, w, h, names, conf=0.25, iou=0.45, max_det=300):
    p = out.T  # (A, 4+nc)
    cls = p[:, 4:]
    best = cls.argmax(1)
    score = cls[np.arange(len(cls)), best]
    m = score > conf
    p, best, score = p[m], best[m], score[m]
    if not len(p):
        return []
    xy = p[:, :2]
    wh = p[:, 2:4] / 2
    boxes = np.concatenate([xy - wh, xy + wh], 1)
    order = score.argsort()[::-1][:30000]
    boxes, best, score = boxes[order], best[order], score[order]
    keep = nms(boxes + best[:, None] * 7680.0, score, iou)[:max_det]
    res = []
    for i in keep:
        b = boxes[i].copy()
        b[[0, 2]] = (b[[0, 2]] - left) / r
        b[[1, 3]] = (b[[1, 3]] - top) / r
        b[[0, 2]] = b[[0, 2]].clip(0, w)
        b[[1, 3]] = b[[1, 3]].clip(0, h)
        c = int(best[i])
        res.append({"class_id": c, "label": names.get(c, str(c)), "score": float(score[i]),
                    "bbox": [float(x) for x in b]})
    return res


def session(model, threads):
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    meta = s.get_modelmeta().custom_metadata_map
    names = {}
    if "names" in meta:
        import ast
        names = ast.literal_eval(meta["names"])
    return s, names


def cmd_detect(a):
    s, names = session(a.model, a.threads)
    inp = s.get_inputs()[0].name
    for path in a.images:
        img = cv2.imread(path)
        h, w = img.shape[:2]
        lb, r, left, top = letterbox(img)
        out = s.run(None, {inp: to_tensor(lb)[None]})[0][0]
        print(json.dumps({"source": path, "width": w, "height": h,
                          "detections": postprocess(out, r, left, top, w, h, names, a.conf, a.iou)}))


def cmd_video(a):
    s, names = session(a.model, a.threads)
    inp = s.get_inputs()[0].name
    cap = cv2.VideoCapture(a.video)
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        pts = cap.get(cv2.CAP_PROP_POS_MSEC)
        if i % a.every == 0:
            h, w = img.shape[:2]
            lb, r, left, top = letterbox(img)
            out = s.run(None, {inp: to_tensor(lb)[None]})[0][0]
            print(json.dumps({"frame": i, "pts_ms": pts,
                              "detections": postprocess(out, r, left, top, w, h, names, a.conf, a.iou)}))
        i += 1


def cmd_bench(a):
    """Sequential decode -> preprocess -> infer (batch B) -> postprocess, as a
    straightforward Python service would run it."""
    s, names = session(a.model, a.threads)
    inp = s.get_inputs()[0].name
    fixed = isinstance(s.get_inputs()[0].shape[0], int)
    batch = 1 if fixed else a.batch
    cap = cv2.VideoCapture(a.video)
    done = 0
    t0 = time.perf_counter()
    while done < a.frames:
        frames = []
        while len(frames) < batch:
            ok, img = cap.read()
            if not ok:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            frames.append(img)
        metas = [letterbox(f) for f in frames]
        x = np.stack([to_tensor(m[0]) for m in metas])
        out = s.run(None, {inp: x})[0]
        for o, (lb, r, left, top), f in zip(out, metas, frames):
            postprocess(o, r, left, top, f.shape[1], f.shape[0], names)
        done += len(frames)
    dt = time.perf_counter() - t0
    print(json.dumps({"frames": done, "seconds": dt, "fps": done / dt, "batch": batch, "threads": a.threads}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("detect", "video", "bench"):
        p = sub.add_parser(name)
        p.add_argument("model")
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--conf", type=float, default=0.25)
        p.add_argument("--iou", type=float, default=0.45)
        if name == "detect":
            p.add_argument("images", nargs="+")
        else:
            p.add_argument("video")
            p.add_argument("--every", type=int, default=1)
            p.add_argument("--frames", type=int, default=200)
            p.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    {"detect": cmd_detect, "video": cmd_video, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
