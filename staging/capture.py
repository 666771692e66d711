"""Loopback notification sinks: what the app would have posted to Slack, captured.

Every `{capture.NAME}` placeholder renders to `CaptureServer.url(NAME)`, a distinct path
on one loopback HTTP server. Each request is recorded (method, path, a few headers, the
JSON or text body) and answered the way a Slack incoming webhook answers: `200`,
`text/plain`, body `ok` — an app that checks the response must not fail because of us.
A flood cannot eat memory: bodies are capped and, past `max_requests`, requests are
counted but not stored. Recorded bodies may hold secrets; redact before writing them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from staging.errors import ConfigError, ServiceUnavailable

PREFIX = "/capture/"
MAX_BODY = 1 << 20
MAX_REQUESTS = 10_000
UNKNOWN = "?"  # requests to a path no sink owns still count: they are notifications too
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Never Authorization or cookies: a captured request is written into the run's artifacts.
_KEPT_HEADERS = ("content-type", "content-length", "user-agent", "transfer-encoding")


@dataclass(frozen=True)
class CapturedRequest:
    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON, else text; None when empty
    timestamp: float
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "body": self.body,
            "timestamp": self.timestamp,
            "truncated": self.truncated,
        }


def decode_body(raw: bytes, content_type: str) -> Any:
    """JSON when it parses (Slack's `payload=` form encoding included), else text."""
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    if "application/x-www-form-urlencoded" in content_type:
        form = parse_qs(text)
        if list(form) == ["payload"]:
            text = form["payload"][0]
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class _Store:
    max_requests: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[CapturedRequest] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, request: CapturedRequest) -> None:
        with self.lock:
            self.counts[request.name] = self.counts.get(request.name, 0) + 1
            if len(self.requests) < self.max_requests:
                self.requests.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog (5) resets connections when an app posts in parallel.
    request_queue_size = 1024
    store: _Store
    names: frozenset[str]
    max_body: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _sink(self) -> str:
        path = urlsplit(self.path).path
        if path.startswith(PREFIX):
            name = path[len(PREFIX) :].split("/", 1)[0]
            if name in self.server.names:
                return name
        return UNKNOWN

    def _read_body(self) -> tuple[bytes, bool]:
        limit = self.server.max_body
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        declared = int(self.headers.get("Content-Length") or 0)
        remaining = declared
        kept = bytearray()
        while remaining > 0:
            # Read (and drop) past the cap so the connection stays in sync.
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
            kept += chunk[: max(0, limit - len(kept))]
        return bytes(kept), declared > limit

    def _read_chunked(self, limit: int) -> tuple[bytes, bool]:
        kept = bytearray()
        truncated = False
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()  # the empty line after the last chunk
                return bytes(kept), truncated
            while size > 0:
                data = self.rfile.read(min(size, 65536))
                if not data:
                    raise ValueError("the request ended inside a chunk")
                size -= len(data)
                room = max(0, limit - len(kept))
                truncated = truncated or len(data) > room
                kept += data[:room]
            self.rfile.readline()

    def _capture(self) -> None:
        try:
            raw, truncated = self._read_body()
        except ValueError:
            raw, truncated = b"", True  # a malformed length or chunk header
            self.close_connection = True  # the rest of the stream cannot be trusted
        content_type = self.headers.get("Content-Type", "")
        self.server.store.add(
            CapturedRequest(
                name=self._sink(),
                method=self.command,
                path=self.path,
                headers={k: v for k in _KEPT_HEADERS if (v := self.headers.get(k)) is not None},
                body=decode_body(raw, content_type),
                timestamp=time.time(),
                truncated=truncated,
            )
        )
        status = 404 if self._sink() == UNKNOWN else 200
        answer = b"ok" if status == 200 else b"no_service"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = do_HEAD = _capture

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: requests are recorded, not logged (bodies may hold secrets)."""


class CaptureServer:
    """One loopback HTTP server; sink NAME lives at `/capture/NAME`."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False

    @classmethod
    def start(
        cls,
        names: Sequence[str],
        *,
        max_body: int = MAX_BODY,
        max_requests: int = MAX_REQUESTS,
    ) -> CaptureServer:
        for name in names:
            if not _NAME.match(name):
                raise ConfigError(
                    f"capture sink name {name!r} cannot be part of a URL path",
                    expected="letters, digits, '_' or '-' (as in {capture.slack})",
                    observed=repr(name),
                    hint="rename the {capture.NAME} placeholder in [tool.staging.env]",
                )
        try:
            server = _Server(("127.0.0.1", 0), _Handler)
        except OSError as exc:
            raise ServiceUnavailable(
                "could not open a loopback port for the notification capture sinks",
                expected="a free port on 127.0.0.1",
                observed=str(exc),
                hint="check that the loopback interface is up",
            ) from exc
        server.store = _Store(max_requests=max_requests)
        server.names = frozenset(names)
        server.max_body = max_body
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        try:
            thread.start()
        except BaseException:
            server.server_close()
            raise
        return cls(server, thread)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._server.names))

    def url(self, name: str) -> str:
        if name not in self._server.names:
            raise KeyError(f"no capture sink named {name!r}; sinks: {', '.join(self.names)}")
        return f"http://127.0.0.1:{self.port}{PREFIX}{name}"

    def requests(self, name: str | None = None) -> list[CapturedRequest]:
        """Stored requests (at most `max_requests`), oldest first; all sinks when None."""
        with self._server.store.lock:
            stored = list(self._server.store.requests)
        return [r for r in stored if name is None or r.name == name]

    def count(self, name: str | None = None) -> int:
        """Every request received, stored or not; all sinks (and unknown paths) when None."""
        with self._server.store.lock:
            counts = dict(self._server.store.counts)
        return sum(counts.values()) if name is None else counts.get(name, 0)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.requests()]

    def hosts(self) -> set[str]:
        """Where the sinks listen, as host and host:port, for egress checks."""
        return {"127.0.0.1", f"127.0.0.1:{self.port}"}

    def stop(self) -> None:
        """Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> CaptureServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
