"""One ONNX Runtime session call, timed: the OpenVINO provider (with a CPU
plugin `load_config`) or the CPU provider, optionally beside decoder-like
threads (OpenCV decode + resize) competing for the cores.

    pip install onnxruntime-openvino==1.24.1 numpy opencv-python-headless
    python benches/ov_session.py MODEL CONFIG_JSON CALLS LOAD_THREADS
    CONFIG_JSON: '{"cpu": true}' for the CPU provider, or OpenVINO CPU plugin
    properties such as '{"INFERENCE_PRECISION_HINT": "bf16"}'; "threads": N
    sets the threads (default 2).
Prints the median per call (BENCHMARKS.md "End to end, session 14").
"""
import sys, time, json, threading, numpy as np, onnxruntime as ort, cv2
model = sys.argv[1]; cfg = json.loads(sys.argv[2]); n = int(sys.argv[3]); load = int(sys.argv[4])
threads = cfg.pop("threads", 2)
if cfg.pop("cpu", False):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
else:
    lc = {"CPU": cfg}
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    s = ort.InferenceSession(model, so, providers=[("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": str(threads), "load_config": json.dumps(lc)})])
x = np.random.rand(1, 3, 640, 640).astype(np.float32)
stop = False
def busy():  # a decoder-like thread: decode + resize frames
    cap = cv2.VideoCapture(__import__("os").path.join(__import__("os").path.dirname(__file__), "..", "data", "video", "vtest.avi"))
    while not stop:
        ok, f = cap.read()
        if not ok: cap.set(cv2.CAP_PROP_POS_FRAMES, 0); continue
        cv2.resize(f, (640, 480)); time.sleep(0.01)
ths = [threading.Thread(target=busy) for _ in range(load)]
[t.start() for t in ths]
for _ in range(3): s.run(None, {s.get_inputs()[0].name: x})
ts = []
for _ in range(n):
    t = time.perf_counter(); s.run(None, {s.get_inputs()[0].name: x}); ts.append((time.perf_counter() - t) * 1000)
stop = True; [t.join() for t in ths]
ts.sort(); print(f"{sys.argv[2]:70s} load={load} p50={ts[len(ts)//2]:.1f} ms")
