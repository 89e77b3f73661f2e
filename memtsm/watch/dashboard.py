"""``memtsm watch --serve``: a live dashboard, one self-contained page fed by Server-Sent Events.

:class:`Dashboard` is an event sink (like :class:`~memtsm.watch.runner.JsonLines`) and an HTTP
server in a daemon thread (the standard library's ``http.server``):

* ``GET /`` -- the page: inline HTML, CSS and JavaScript, nothing fetched from elsewhere (works
  offline). Per stream a score timeline (final scores solid, provisional ones faint, the
  threshold dashed), its state (connected, gap, alert, ended) and the alerts with thumbnails and
  links to their evidence clips.
* ``GET /events`` -- ``text/event-stream``: the recent events, then every new one as it happens.
* ``GET /evidence/<file>`` -- a thumbnail or clip from the ``--alerts`` folder (nothing else).

It binds ``127.0.0.1`` by default. Any other address needs a token: every request must then carry
it (``?token=...``, which the page passes on, or ``Authorization: Bearer ...``), else 403.
"""

from __future__ import annotations

import hmac
import http.server
import json
import logging
import mimetypes
import queue
import threading
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Events replayed to a page that connects (the newest), and queued per slow client at most.
HISTORY_EVENTS = 5000
CLIENT_QUEUE = 2000
#: Seconds between keep-alive comments on an idle event stream.
KEEPALIVE_SECONDS = 10.0


def parse_address(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` / ``:8080`` / ``8080`` -> ``(host, port)``.

    Raises:
        ValueError: not ``[HOST:]PORT``.
    """
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--serve must be [HOST:]PORT, got {text!r}")
    return host, int(port)


class Dashboard:
    """The live page's server and an event sink.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see :attr:`url`).
        token: required for every request; must be given when ``host`` is not loopback.
        alerts_dir: the ``--alerts`` folder whose thumbnails and clips the page shows.

    Raises:
        ValueError: a non-loopback address without a token.
        OSError: the address cannot be bound.
    """

    def __init__(self, address: tuple[str, int], token: str | None = None,
                 alerts_dir: Path | str | None = None) -> None:
        host, port = address
        if host not in LOOPBACK and not token:
            raise ValueError(f"--serve {host}:{port} is reachable from other machines: give "
                             "--token (every request is then checked)")
        self.token = token
        self.alerts_dir = Path(alerts_dir).resolve() if alerts_dir is not None else None
        self._history: deque[str] = deque(maxlen=HISTORY_EVENTS)
        self._clients: list[queue.Queue] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = http.server.ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="memtsm-dashboard")
        self._thread.start()
        logger.info("dashboard at %s", self.url)

    @property
    def url(self) -> str:
        """The page's address (with the token)."""
        host, port = self._server.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/" + (f"?token={quote(self.token)}" if self.token else "")

    def __call__(self, event: dict[str, Any]) -> None:
        """Record an event and send it to every open page."""
        data = json.dumps(self._with_urls(event))
        with self._lock:
            self._history.append(data)
            clients = list(self._clients)
        for client in clients:
            try:
                client.put_nowait(data)
            except queue.Full:  # a page that does not read: drop it, it reconnects
                self._drop(client)

    def _with_urls(self, event: dict[str, Any]) -> dict[str, Any]:
        """Thumbnail and clip paths as ``/evidence/...`` links."""
        out = dict(event)
        for key in ("thumbnail", "clip"):
            path = event.get(key)
            if path and self.alerts_dir is not None:
                try:
                    relative = Path(path).resolve().relative_to(self.alerts_dir)
                except ValueError:
                    continue
                out[f"{key}_url"] = "/evidence/" + quote(relative.as_posix())
        return out

    def _subscribe(self) -> tuple[queue.Queue, list[str]]:
        client: queue.Queue = queue.Queue(maxsize=CLIENT_QUEUE)
        with self._lock:
            self._clients.append(client)
            return client, list(self._history)

    def _drop(self, client: queue.Queue) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        try:
            client.put_nowait(None)
        except queue.Full:
            pass

    def allowed(self, headers, query: dict[str, list[str]]) -> bool:
        """Whether a request carries the token (always, without one)."""
        if not self.token:
            return True
        given = (query.get("token") or [""])[0]
        bearer = headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            given = bearer[len("Bearer "):]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def evidence(self, name: str) -> Path | None:
        """A file of the alerts folder by its relative name, or None (outside it, absent)."""
        if self.alerts_dir is None:
            return None
        path = (self.alerts_dir / unquote(name)).resolve()
        if not path.is_relative_to(self.alerts_dir) or not path.is_file():
            return None
        return path

    def close(self) -> None:
        """End the event streams and stop serving."""
        self._closed.set()
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.put_nowait(None)
            except queue.Full:
                pass
        self._server.shutdown()
        self._server.server_close()


def _handler(dashboard: Dashboard) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "memtsm-watch"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if not dashboard.allowed(self.headers, parse_qs(url.query)):
                self.send_error(403, "missing or wrong token")
                return
            if url.path == "/":
                self._send(PAGE.encode(), "text/html; charset=utf-8")
            elif url.path == "/events":
                self._events()
            elif url.path.startswith("/evidence/"):
                path = dashboard.evidence(url.path[len("/evidence/"):])
                if path is None:
                    self.send_error(404)
                    return
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self._send(path.read_bytes(), kind)
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _events(self) -> None:
            client, history = dashboard._subscribe()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                for data in history:
                    self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
                while not dashboard._closed.is_set():
                    try:
                        data = client.get(timeout=KEEPALIVE_SECONDS)
                    except queue.Empty:
                        self.wfile.write(b": keep-alive\n\n")
                    else:
                        if data is None:
                            return
                        self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
            except OSError:  # the page went away
                pass
            finally:
                dashboard._drop(client)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("dashboard: " + format, *args)

    return Handler


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>memtsm watch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1em;background:#fafafa;color:#222}
h1{font-size:1.2em} .stream{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:.6em 1em;margin:0 0 1em} .stream h2{font-size:1em;margin:.2em 0;word-break:break-all}
.state{font-weight:600} .state.alert{color:#c00} .state.gap,.state.failed{color:#b60}
canvas{width:100%;height:120px;display:block;background:#fcfcfc;border:1px solid #eee}
.alerts{display:flex;flex-wrap:wrap;gap:.5em;margin-top:.5em;padding:0;list-style:none}
.alerts li{border:1px solid #e99;border-radius:4px;padding:.3em;font-size:12px}
.alerts img{display:block;max-width:160px} #status{color:#666}
</style></head><body>
<h1>memtsm watch</h1><p id="status">connecting…</p><div id="streams"></div>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = u => token ? u + (u.includes("?") ? "&" : "?") + "token=" +
  encodeURIComponent(token) : u;
const streams = new Map();
const KEEP = 300;
function card(name) {
  if (streams.has(name)) return streams.get(name);
  const root = document.createElement("div");
  root.className = "stream";
  root.dataset.stream = name;
  root.innerHTML = '<h2></h2><div>state: <span class="state">connecting</span> · segments: ' +
    '<span class="segments">0</span> · last score: <span class="score">–</span></div>' +
    '<canvas width="900" height="120"></canvas><ul class="alerts"></ul>';
  root.querySelector("h2").textContent = name;
  document.getElementById("streams").appendChild(root);
  const s = {root, scores: new Map(), threshold: null, finals: 0};
  streams.set(name, s);
  return s;
}
function setState(s, text, kind) {
  const el = s.root.querySelector(".state");
  el.textContent = text;
  el.className = "state " + (kind || "");
}
function draw(s) {
  const canvas = s.root.querySelector("canvas"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const keys = [...s.scores.keys()].sort((a, b) => a - b).slice(-KEEP);
  if (!keys.length) return;
  const x = i => (i - keys[0]) / Math.max(1, keys.length - 1) * (w - 4) + 2;
  const y = v => h - 2 - v * (h - 4);
  if (s.threshold !== null) {
    g.strokeStyle = "#c00"; g.setLineDash([4, 4]); g.beginPath();
    g.moveTo(0, y(s.threshold)); g.lineTo(w, y(s.threshold)); g.stroke(); g.setLineDash([]);
  }
  for (const final of [false, true]) {
    g.strokeStyle = final ? "#1565c0" : "rgba(21,101,192,.3)"; g.beginPath();
    let started = false;
    for (const k of keys) {
      const e = s.scores.get(k);
      if (e.final !== final && final) continue;
      started ? g.lineTo(x(k), y(e.score)) : g.moveTo(x(k), y(e.score));
      started = true;
    }
    g.stroke();
  }
}
function handle(e) {
  const s = card(e.stream);
  if (e.event === "segment") {
    const old = s.scores.get(e.index);
    if (!old || !old.final) s.scores.set(e.index, e);
    if (s.scores.size > KEEP * 2) s.scores.delete(Math.min(...s.scores.keys()));
    if (e.final) s.finals += 1;
    s.root.querySelector(".segments").textContent = s.finals;
    s.root.querySelector(".score").textContent =
      e.score.toFixed(3) + (e.final ? "" : " (provisional)");
    if (!s.root.querySelector(".state").classList.contains("alert")) setState(s, "scoring");
    draw(s);
  } else if (e.event === "connected") {
    s.threshold = e.threshold;
    setState(s, "connected " + e.width + "×" + e.height + " @ " + e.fps.toFixed(1) + " fps");
  } else if (e.event === "gap") {
    setState(s, "gap: " + e.reason, "gap");
  } else if (e.event === "alert_open") {
    s.threshold = e.threshold;
    setState(s, "ALERT " + e.alert, "alert");
    const li = document.createElement("li");
    li.dataset.alert = e.alert;
    li.innerHTML = '<b></b><div class="when"></div>';
    li.querySelector("b").textContent = e.alert;
    li.querySelector(".when").textContent = "from " + e.start_time.toFixed(1) + " s, peak " +
      e.peak_score.toFixed(3);
    if (e.thumbnail_url) {
      const img = document.createElement("img");
      img.src = withToken(e.thumbnail_url); img.alt = "thumbnail of " + e.alert;
      li.prepend(img);
    }
    s.root.querySelector(".alerts").prepend(li);
    draw(s);
  } else if (e.event === "alert_close") {
    setState(s, "scoring");
    const li = s.root.querySelector('li[data-alert="' + CSS.escape(e.alert) + '"] .when');
    if (li) li.textContent += " to " + e.end_time.toFixed(1) + " s";
  } else if (e.event === "evidence" && e.clip_url) {
    const li = s.root.querySelector('li[data-alert="' + CSS.escape(e.alert) + '"]');
    if (li) {
      const a = document.createElement("a");
      a.href = withToken(e.clip_url); a.textContent = "clip"; a.className = "clip";
      li.appendChild(a);
    }
  } else if (e.event === "error") {
    setState(s, "error: " + e.message, "failed");
  } else if (e.event === "end") {
    setState(s, e.status + ": " + e.reason, e.status === "failed" ? "failed" : "");
  }
}
const source = new EventSource(withToken("/events"));
source.onopen = () => {  // the server replays its recent events to every new connection
  streams.clear();
  document.getElementById("streams").replaceChildren();
  document.getElementById("status").textContent = "live";
};
source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
source.onmessage = m => handle(JSON.parse(m.data));
</script></body></html>
"""
