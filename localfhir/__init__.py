"""Start and stop the in-memory FHIR R4 server (localfhir/server.mjs, Node) from Python."""

from __future__ import annotations

import atexit
import collections
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "LocalFhirError",
    "LocalServer",
    "NodeNotFoundError",
    "PACKAGE_DIR",
    "SERVER_SCRIPT",
    "check_node_modules",
    "find_node",
    "start_local_server",
]

PACKAGE_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = PACKAGE_DIR / "server.mjs"
MIN_NODE_MAJOR = 20
_READY = re.compile(r"localfhir ready: (http://\S+/fhir)")
_SETUP_HINT = "run ./dev setup (or: npm ci --prefix localfhir)"


class LocalFhirError(RuntimeError):
    """The local FHIR server could not be started; the message says why and what to do."""


class NodeNotFoundError(LocalFhirError):
    """No usable Node.js (>= 20) is installed, so the local FHIR server cannot run here."""


def find_node() -> str:
    """Path of a Node.js >= 20 binary (LOCAL_FHIR_NODE, else `node` on PATH) or raise."""
    node = os.environ.get("LOCAL_FHIR_NODE") or shutil.which("node")
    if not node:
        raise NodeNotFoundError(
            f"Node.js >= {MIN_NODE_MAJOR} is needed for the local FHIR server and none is on PATH"
        )
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise NodeNotFoundError(f"cannot run {node} --version: {exc}") from exc
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise NodeNotFoundError(
            f"{node} is {version or 'unknown'}; "
            f"the local FHIR server needs Node >= {MIN_NODE_MAJOR}"
        )
    return node


def check_node_modules() -> None:
    """Raise LocalFhirError telling to run ./dev setup when the npm packages are missing."""
    marker = PACKAGE_DIR / "node_modules" / "@medplum" / "fhir-router" / "package.json"
    if not marker.is_file():
        raise LocalFhirError(
            f"the local FHIR server's npm packages are not installed: {_SETUP_HINT}"
        )


class LocalServer:
    """A running local FHIR server process; `.stop()` ends it (also done at interpreter exit)."""

    def __init__(self, process: subprocess.Popen[str], base_url: str, output: collections.deque):
        self._process = process
        self._output = output
        self.base_url = base_url
        self.pid = process.pid

    @property
    def running(self) -> bool:
        """True while the server process has not exited."""
        return self._process.poll() is None

    def output(self) -> str:
        """The server's last lines of output (for error messages)."""
        return "\n".join(self._output)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server by pid (SIGTERM, then SIGKILL after `timeout` seconds)."""
        _running.discard(self)
        terminate(self._process, timeout)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalServer(base_url={self.base_url!r}, pid={self.pid})"


_running: set[LocalServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _drain(process: subprocess.Popen[str], output: collections.deque, ready: dict,
           event: threading.Event, echo: bool) -> None:
    # Keeps reading so the server never blocks on a full pipe; remembers the last lines.
    assert process.stdout is not None
    for line in process.stdout:
        line = line.rstrip("\n")
        output.append(line)
        if echo:
            print(line, flush=True)
        match = _READY.search(line)
        if match and "url" not in ready:
            ready["url"] = match.group(1)
            event.set()
    event.set()


def _metadata_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/metadata", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_local_server(
    port: int | None = None, *, host: str = "127.0.0.1", timeout: float = 60.0, echo: bool = False,
    env: Mapping[str, str] | None = None,
) -> LocalServer:
    """Start the local FHIR server (a free port when `port` is None) and wait until it answers;
    `env` adds environment variables (LOCAL_FHIR_REQUIRE_PATIENT, LOCAL_FHIR_EXPORT...)."""
    node = find_node()
    check_node_modules()
    command = [node, str(SERVER_SCRIPT), "--host", host, "--port", str(port or 0),
               "--parent-pid", str(os.getpid())]
    process = subprocess.Popen(
        command,
        cwd=PACKAGE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal Ctrl-C reaches only the caller, whose exit stops us
        env={**os.environ, **env} if env else None,
    )
    output: collections.deque = collections.deque(maxlen=200)
    ready: dict = {}
    event = threading.Event()
    threading.Thread(
        target=_drain, args=(process, output, ready, event, echo), daemon=True,
        name=f"localfhir-{process.pid}",
    ).start()
    deadline = time.monotonic() + timeout
    event.wait(timeout)
    base_url = ready.get("url")
    server = LocalServer(process, base_url or "", output)
    _running.add(server)
    while base_url and time.monotonic() < deadline and server.running:
        if _metadata_ok(base_url):
            return server
        time.sleep(0.1)
    server.stop()
    reason = "exited" if process.poll() is not None else f"was not ready after {timeout:.0f} s"
    last = "\n".join(list(output)[-20:]) or "(no output)"
    raise LocalFhirError(f"the local FHIR server {reason}:\n{last}")


def terminate(process: subprocess.Popen[str], timeout: float) -> None:
    """Stop a child by its pid: SIGTERM, then SIGKILL after `timeout` seconds (the test servers
    of tests/support stop their processes this way too)."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
