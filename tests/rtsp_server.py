#!/usr/bin/python3
"""Minimal RTSP test server for vigil's stream tests.

Serves one mount, either an endless live test pattern (default) or a file that
loops forever, as H.264 over RTSP on 127.0.0.1. Prints "ready" on stdout once
it is listening, so a test can wait for that line instead of sleeping.

Needs Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0 and the
gstreamer1.0 plugin packages); other Pythons usually lack the `gi` module.

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --mount /test [--file x.mp4]
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PATTERN = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate={fps}/1 "
    "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)

# Frames from a file are pushed through an appsrc with our own live timestamps;
# encoding to H.264 here makes the stream plain H.264 whatever the file holds.
FILE = (
    "( appsrc name=src is-live=true format=time do-timestamp=false "
    "! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


def gst_quote(value):
    """Quotes a property value for a gst-launch description."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FileLooper:
    """Decodes a file in a private pipeline and restarts it at the end.

    Looping a private pipeline (instead of seeking the RTSP media's own) keeps
    the served stream's clock and RTP timestamps running forward like a real
    camera's, which is what the client under test expects.
    """

    def __init__(self, path):
        self.pipe = Gst.parse_launch(
            f"filesrc location={gst_quote(path)} ! decodebin ! videoconvert "
            "! video/x-raw,format=I420 ! appsink name=sink sync=false max-buffers=8"
        )
        self.sink = self.pipe.get_by_name("sink")
        self.pipe.set_state(Gst.State.PAUSED)
        change, _, _ = self.pipe.get_state(10 * Gst.SECOND)
        if change == Gst.StateChangeReturn.FAILURE:
            raise RuntimeError(f"cannot decode {path}")
        preroll = self.sink.emit("pull-preroll")
        if preroll is None:
            raise RuntimeError(f"no video frames in {path}")
        self.caps = preroll.get_caps()
        ok, num, den = self.caps.get_structure(0).get_fraction("framerate")
        self.frame_ns = Gst.SECOND * den // num if ok and num > 0 else Gst.SECOND // 25
        self.count = 0
        self.pipe.set_state(Gst.State.PLAYING)

    def next_buffer(self):
        sample = self.sink.emit("try-pull-sample", 2 * Gst.SECOND)
        if sample is None:  # end of file: rewind and carry on
            self.pipe.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
            sample = self.sink.emit("try-pull-sample", 5 * Gst.SECOND)
            if sample is None:
                return None
        buf = sample.get_buffer().copy()
        buf.pts = buf.dts = self.count * self.frame_ns
        buf.duration = self.frame_ns
        self.count += 1
        return buf

    def configure(self, _factory, media):
        src = media.get_element().get_by_name("src")
        src.set_property("caps", self.caps)
        self.count = 0

        def need_data(appsrc, _length):
            buf = self.next_buffer()
            if buf is None:
                appsrc.emit("end-of-stream")
            else:
                appsrc.emit("push-buffer", buf)

        src.connect("need-data", need_data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mount", default="/test")
    ap.add_argument("--file", help="loop this video file instead of a test pattern")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--tcp-only", action="store_true", help="refuse UDP transport")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    if args.file:
        factory = GstRtspServer.RTSPMediaFactory()
        looper = FileLooper(args.file)
        factory.set_launch(FILE)
        factory.connect("media-configure", looper.configure)
    else:
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(PATTERN.format(w=args.width, h=args.height, fps=args.fps))
    factory.set_shared(True)
    if args.tcp_only:
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    server.get_mount_points().add_factory(args.mount, factory)

    if server.attach(None) == 0:
        print(f"error: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
