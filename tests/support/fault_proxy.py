"""A fault-injecting HTTP proxy in front of the local FHIR server, switched at runtime by tests.

Faults: `down()` refuses connections (the listening socket is closed, the port kept);
`inject("kill")` drops the connection half-way through the answer; `inject("slow")` holds a
request longer than the client's timeout; `inject("storm")` answers 429/503 with Retry-After;
`inject("fail")` answers an error status (e.g. 500 to POST transaction Bundles only, with
`when=is_transaction`); `inject("mutate", mutate=f)` passes the server's answer body through
`f` (a lying server: error outcomes, foreign subjects, wrong totals, truncation). Every request
is recorded, so a test can also prove none was sent.
Loopback only; bounded in threads, body size and delay.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_THREADS = 128
MAX_DELAY_SECONDS = 120.0
UPSTREAM_TIMEOUT_SECONDS = 60.0
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "content-length",
})
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it, and what it did with it."""

    method: str
    path: str
    bundle_type: str | None  # "transaction" / "batch" for a POSTed Bundle
    action: str  # "forwarded", "kill", "slow", "storm", "fail"


def is_transaction(seen: Seen) -> bool:
    """A POSTed transaction Bundle (the write-back and ResearchStudy creation)."""
    return seen.method == "POST" and seen.bundle_type == "transaction"


def is_read(seen: Seen) -> bool:
    """Anything but a transaction: reads, searches and read batches."""
    return not is_transaction(seen)


@dataclass
class Fault:
    """A fault for matching requests: after `skip` of them, for `count` (None: until cleared)."""

    action: str
    when: Callable[[Seen], bool] = lambda seen: True
    skip: int = 0
    count: int | None = None
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    diagnostics: str = "injected failure (test proxy)"
    mutate: Callable[[bytes], bytes] | None = None
    matched: int = 0
    applied: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False

    def drop(self) -> None:
        """Let held (slow) requests go without ever reaching the server."""
        self.dropped = True
        self.released.set()

    def take(self, seen: Seen) -> bool:
        """Count a matching request; True when this fault applies to it."""
        if not self.when(seen):
            return False
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.count is not None and self.applied >= self.count:
            return False
        self.applied += 1
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._slots = threading.BoundedSemaphore(MAX_THREADS)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Bounded: beyond MAX_THREADS connections wait in the accept loop instead of piling up.
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so `down()` leaves no pooled connection working.
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test output stays readable; `proxy.seen` is the record

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large for the test proxy")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        bundle_type = None
        if self.command == "POST" and body.startswith(b"{"):
            try:
                parsed = json.loads(body)
                if isinstance(parsed, dict) and parsed.get("resourceType") == "Bundle":
                    bundle_type = parsed.get("type")
            except ValueError:
                pass
        probe = Seen(self.command, self.path, bundle_type, "forwarded")
        fault = proxy._fault_for(probe)
        action = fault.action if fault else "forwarded"
        proxy._record(Seen(self.command, self.path, bundle_type, action))
        if fault is not None and fault.action == "storm":
            self._answer(fault.status, _outcome("throttled", "too many requests (test storm)"),
                         {"Retry-After": fault.retry_after or "1"})
            return
        if fault is not None and fault.action == "fail":
            self._answer(fault.status, _outcome("exception", fault.diagnostics), {})
            return
        if fault is not None and fault.action == "slow":
            # Held (interruptibly) beyond the client's timeout, then forwarded like a slow server.
            fault.released.wait(min(fault.delay, MAX_DELAY_SECONDS))
            if fault.dropped:
                self.close_connection = True
                return
        status, headers, payload = proxy._forward(self.command, self.path, self.headers, body)
        if fault is not None and fault.action == "kill":
            self._drop_mid_answer(status, headers, payload)
            return
        if fault is not None and fault.mutate is not None:
            payload = fault.mutate(payload)
        self._answer(status, payload, headers)

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timed out) meanwhile

    def _drop_mid_answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload) + 1))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET


def _outcome(code: str, text: str) -> bytes:
    issue = {"severity": "error", "code": code, "diagnostics": text}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


class FaultProxy:
    """The proxy: `base_url` replaces the FHIR server's; faults switch on and off at runtime."""

    def __init__(self, upstream_base_url: str) -> None:
        upstream = urlsplit(upstream_base_url)
        if upstream.hostname not in _LOOPBACK or upstream.scheme != "http":
            raise ValueError("the fault proxy only forwards to a loopback http server")
        self._upstream = (upstream.hostname, upstream.port or 80)
        self._base_path = upstream.path.rstrip("/")
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ life cycle

    @property
    def base_url(self) -> str:
        """The FHIR base URL to give the service."""
        return f"http://127.0.0.1:{self.port}{self._base_path}"

    def start(self) -> FaultProxy:
        """Listen on a free loopback port (the same port again after `down()`)."""
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={
            "poll_interval": 0.05}, name=f"fault-proxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Refuse connections: nothing listens on the port until `up()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            assert self._thread is not None
            self._thread.join(10)

    def up(self) -> None:
        """Accept connections again on the same port."""
        if self._server is None:
            self.start()

    def stop(self) -> None:
        """Release held requests and close the port."""
        self.clear()
        self.down()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        action: str,
        *,
        when: Callable[[Seen], bool] | None = None,
        skip: int = 0,
        count: int | None = None,
        status: int | None = None,
        retry_after: str | None = None,
        delay: float = 0.0,
        diagnostics: str | None = None,
        mutate: Callable[[bytes], bytes] | None = None,
    ) -> Fault:
        """Add a fault: "kill", "slow" (delay), "storm" (status, retry_after), "fail" (status,
        the OperationOutcome's diagnostics) or "mutate" (the answer's body through `mutate`)."""
        if action not in ("kill", "slow", "storm", "fail", "mutate"):
            raise ValueError(f"unknown fault {action!r}")
        if (action == "mutate") != (mutate is not None):
            raise ValueError("mutate=... goes with the 'mutate' fault, and only with it")
        default_status = {"storm": 503, "fail": 500}.get(action, 0)
        fault = Fault(action, when or (lambda seen: True), skip, count,
                      status or default_status, retry_after, delay)
        if diagnostics is not None:
            fault.diagnostics = diagnostics
        fault.mutate = mutate
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault and let held (slow) requests go on."""
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            fault.released.set()

    def _fault_for(self, probe: Seen) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.take(probe):
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def requests(self, action: str | None = None) -> list[Seen]:
        """The requests seen so far (optionally only those that met a given fault)."""
        with self._lock:
            return [s for s in self.seen if action is None or s.action == action]

    # ------------------------------------------------------------------ forwarding

    def _forward(self, method: str, path: str, headers: Any, body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            # Host is passed on as the client sent it: the server builds its links from it,
            # so next links point at the proxy.
            out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body or None, headers=out)
            response = conn.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, payload
        except OSError as exc:
            return 502, {}, _outcome("transient", f"test proxy: upstream failed ({exc})")
        finally:
            conn.close()
