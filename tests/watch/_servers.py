"""Real stream servers for the live-scoring tests: GStreamer RTSP, MPEG-TS over TCP, UDP, HTTP."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")
TS_PACKET = 188


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rtsp_available() -> str | None:
    """Why GStreamer's RTSP server cannot run here, or None."""
    if not SYSTEM_PYTHON.is_file():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
         "assert Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('qtdemux')"],
        capture_output=True, text=True, timeout=60)
    if probe.returncode:
        return ("GStreamer RTSP server not installed (apt-get install python3-gi "
                "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good "
                f"gstreamer1.0-plugins-bad): {probe.stderr.strip()[-200:]}")
    return None


class RtspServer:
    """gst-rtsp-server serving an MP4 at ``rtsp://127.0.0.1:PORT/cam`` in a child process."""

    def __init__(self, video: Path, port: int | None = None) -> None:
        self.video = video
        self.port = port or free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.process: subprocess.Popen | None = None

    def start(self) -> RtspServer:
        self.process = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(RTSP_SCRIPT), str(self.port), str(self.video)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            pytest.fail(f"RTSP server did not start: {line} {self.process.stderr.read()}")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TcpServer:
    """Sends ``payload`` to every client of ``tcp://127.0.0.1:PORT``, then closes the connection.

    ``rate``: bytes per second (None: all at once); ``hold``: seconds to keep the connection
    open, silent, after the payload.
    """

    def __init__(self, payload: bytes, rate: float | None = None, hold: float = 0.0) -> None:
        self.payload, self.rate, self.hold = payload, rate, hold
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._send, args=(client,), daemon=True).start()

    def _send(self, client: socket.socket) -> None:
        try:
            with client:
                chunk = 7 * TS_PACKET * 4
                for start in range(0, len(self.payload), chunk):
                    if self._stop.is_set():
                        return
                    client.sendall(self.payload[start:start + chunk])
                    if self.rate:
                        time.sleep(chunk / self.rate)
                self._stop.wait(self.hold)
        except OSError:
            pass

    def __enter__(self) -> TcpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.listener.close()
        self.thread.join(5)


class UdpSender:
    """Sends an MPEG-TS payload as datagrams (7 TS packets each) to ``udp://127.0.0.1:PORT``."""

    def __init__(self, payload: bytes, rate: float) -> None:
        self.payload, self.rate = payload, rate
        self.port = free_port(socket.SOCK_DGRAM)
        self.url = f"udp://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.start_after = threading.Event()

    def _send(self) -> None:
        self.start_after.wait(30)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            size = 7 * TS_PACKET
            for start in range(0, len(self.payload), size):
                if self._stop.is_set():
                    return
                out.sendto(self.payload[start:start + size], ("127.0.0.1", self.port))
                time.sleep(size / self.rate)

    def __enter__(self) -> UdpSender:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(5)


class HttpServer:
    """Serves one file at ``http://127.0.0.1:PORT/<name>`` (Python's http.server, a thread)."""

    def __init__(self, file: Path, content_type: str = "video/mp2t") -> None:
        data, name = file.read_bytes(), file.name

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"/{name}":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{name}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


