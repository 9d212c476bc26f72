"""A small HTTP server on 127.0.0.1 for download tests: honours Range, can drop the connection mid-file,
and answers proxy-style requests (an absolute URL as the path) like any other."""

from __future__ import annotations

import http.server
import re
import threading
from contextlib import contextmanager


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
        self.wfile.write(body)


@contextmanager
def serve(payload: bytes, drop_after: int | None = None, honour_range: bool = True):
    """Serve ``payload`` at any path; yields the server (``.url``, ``.requests``, ``.drop_after``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.payload, server.drop_after, server.honour_range, server.requests = payload, drop_after, honour_range, []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/model.pth"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
