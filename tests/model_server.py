"""A small HTTP server on 127.0.0.1 for download tests: honours Range, can drop the connection mid-file,
and answers proxy-style requests (an absolute URL as the path) like any other."""

from __future__ import annotations

import http.server
import re
import threading
import time
from contextlib import contextmanager

import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data, start = server.payload, 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and server.honour_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.drop_after is not None:  # promise the whole body, send part of it, hang up
            self.wfile.write(body[:server.drop_after])
            server.drop_after = None
            self.close_connection = True
            return
        for start in range(0, len(body), 64 * 1024):
            self.wfile.write(body[start:start + 64 * 1024])
            time.sleep(server.delay)


@contextmanager
def serve(payload: bytes, drop_after: int | None = None, honour_range: bool = True, delay: float = 0.0):
    """Serve ``payload`` at any path (``delay`` seconds after each 64 KiB); yields the server (``.url``,
    ``.requests``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.payload, server.drop_after, server.honour_range, server.requests = payload, drop_after, honour_range, []
    server.delay = delay
    server.url = f"http://127.0.0.1:{server.server_address[1]}/model.pth"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to the local server go direct, whatever proxy the machine running the tests has."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
