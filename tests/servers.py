"""Local servers for the destination tests, on 127.0.0.1 only: moto's S3-compatible server in a child
process (with its request recorder, so that its state can be rebuilt after it is killed), a TCP proxy
that kills that server in the middle of an upload, and a webhook receiver standing in for a CMS."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``python -m moto.server`` on a loopback port; every completed request is appended to a recording."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.recording = folder / "moto-recording.jsonl"
        self.log = folder / "moto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, replay: bool = False) -> MotoServer:
        env = {**os.environ, "MOTO_ENABLE_RECORDING": "1", "MOTO_RECORDER_FILEPATH": str(self.recording)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"moto server did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        if replay and self.recording.exists():  # rebuild the state from the requests that completed
            self._one_per_line()  # moto's own replay reads the recording line by line
            req = urllib.request.Request(f"{self.url}/moto-api/recorder/replay-recording", method="POST")
            urllib.request.urlopen(req, timeout=60).read()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def recorded(self) -> list[dict]:
        """The recorded requests. moto writes each entry and its newline in two calls from the server's
        request threads, so concurrent uploads can leave two entries on one line: read a stream of objects."""
        if not self.recording.exists():
            return []
        text, decoder, at, entries = self.recording.read_text(), json.JSONDecoder(), 0, []
        while at < len(text):
            if text[at].isspace():
                at += 1
                continue
            entry, at = decoder.raw_decode(text, at)
            entries.append(entry)
        return entries

    def _one_per_line(self) -> None:
        self.recording.write_text("".join(json.dumps(entry) + "\n" for entry in self.recorded()))


class KillingProxy:
    """Forwards TCP to a server; on the ``nth`` object upload (a PUT that is not a server-side copy) it
    passes the headers and half the body, then kills the server and stops accepting connections."""

    def __init__(self, target_port: int, nth: int, kill) -> None:  # noqa: ANN001 — kill: () -> None
        self.target_port, self.nth, self.kill = target_port, nth, kill
        self.uploads = 0
        self.tripped = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept(); close alone does not
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while not self.tripped.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        """Server → client; when the server goes away, so does the client's connection (as with a real one)."""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:  # the server is gone: so is this connection
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        body_left = None  # bytes of the doomed upload's body still to pass before the kill
        try:
            while data := client.recv(65536):
                if body_left is None and data.startswith(b"PUT ") and b"x-amz-copy-source" not in data.lower():
                    with self._lock:
                        self.uploads += 1
                        doomed = self.uploads == self.nth
                    if doomed:
                        head, _, body = data.partition(b"\r\n\r\n")
                        length = next(int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
                                      if k.strip().lower() == b"content-length")
                        body_left = max(1, length // 2)
                        upstream.sendall(head + b"\r\n\r\n")
                        data = body
                if body_left is not None and data:
                    upstream.sendall(data[:body_left])
                    body_left -= len(data[:body_left])
                    if body_left <= 0:
                        time.sleep(0.2)  # let the server start reading the body
                        self.tripped.set()
                        self.kill()
                        self.close()
                        break
                elif body_left is None:
                    upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()


class Webhook:
    """A CMS stand-in: records each POST (headers and JSON body); answers with ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.calls: list[dict] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 — http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.calls.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:  # noqa: ANN002 — quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cms/hooks/wanflow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
