"""A real RTSP server (GStreamer's gst-rtsp-server), run by Debian's python3 with python3-gi.

Usage: rtsp_server.py PORT FILE.mp4 -- serves FILE at rtsp://127.0.0.1:PORT/cam (H.264 as it is
in the file, at its own frame rate) and prints "ready" once it listens.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( filesrc location={path} ! qtdemux ! h264parse ! "
                       "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(False)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on port {port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
