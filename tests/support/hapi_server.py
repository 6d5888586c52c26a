"""Build (once) and start the HAPI FHIR JPA server of hapi/ for the `hapi` test tier."""

from __future__ import annotations

import atexit
import collections
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from localfhir import terminate

REPO_ROOT = Path(__file__).resolve().parents[2]
HAPI_DIR = REPO_ROOT / "hapi"
HAPI_JAR = HAPI_DIR / "target" / "hapi-test-server.jar"
# C1-only JIT and the serial collector halve HAPI's start-up CPU on 2 cores (about 35 s of CPU
# instead of 80); the bounded heap keeps it from growing into the test run's memory.
JAVA_OPTS = ("-Xmx768m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
             # A bulk export starts within a second and its steps follow each other at once
             # (HAPI alone starts it at its once-a-minute maintenance pass).
             "-Dhapi.job_fast_tracking=true", "-Dhapi.maintenance_every_ms=1000")
BUILD_TIMEOUT = 20 * 60.0  # the first build downloads about 340 MB from Maven Central
START_TIMEOUT = 240.0  # about 30 s on 2 idle cores; several minutes when the cores are shared
_READY = re.compile(r"HAPI FHIR ready at (http://\S+/fhir)")


class HapiUnavailable(RuntimeError):
    """Java or Maven is missing here, so HAPI cannot run (the tier skips, except in CI)."""


class HapiError(RuntimeError):
    """HAPI did not build or start; the message carries the last lines of its output."""


def missing_tools() -> str | None:
    """Why HAPI cannot run on this machine (java or mvn missing), or None."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        return (f"{' and '.join(missing)} not on PATH: the `hapi` tests need Java >= 17 and Maven "
                "(apt-get install openjdk-17-jdk-headless maven)")
    return None


def jar_is_current() -> bool:
    """True when the built jar exists and is newer than the pom and every source file."""
    if not HAPI_JAR.is_file() or not (HAPI_DIR / "target" / "lib").is_dir():
        return False
    built = HAPI_JAR.stat().st_mtime
    sources = [HAPI_DIR / "pom.xml", *(p for p in (HAPI_DIR / "src").rglob("*") if p.is_file())]
    return all(p.stat().st_mtime <= built for p in sources)


def build() -> None:
    """Build hapi/ with `./dev hapi-build` (offline when ~/.m2 has everything) unless current."""
    reason = missing_tools()
    if reason:
        raise HapiUnavailable(reason)
    if jar_is_current():
        return
    try:
        done = subprocess.run(
            ["bash", str(REPO_ROOT / "dev"), "hapi-build"], cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise HapiError(f"building hapi/ took more than {BUILD_TIMEOUT:.0f} s") from exc
    if done.returncode != 0 or not HAPI_JAR.is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise HapiError(f"building hapi/ failed (./dev hapi-build):\n{tail}")


class HapiServer:
    """A HAPI process; `.wait_ready()` waits for /fhir/metadata, `.stop()` ends it by pid."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._launched = time.monotonic()
        # Seconds from launch until HAPI announced it was ready (the benchmark's start figure).
        self.ready_seconds: float | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready: dict[str, str] = {}
        self._announced = threading.Event()
        self.pid = process.pid
        self.base_url = ""
        threading.Thread(target=self._drain, daemon=True, name=f"hapi-{self.pid}").start()

    def _drain(self) -> None:
        # Keeps reading so HAPI never blocks on a full pipe; remembers the last lines.
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._output.append(line.rstrip("\n"))
            match = _READY.search(line)
            if match and "url" not in self._ready:
                self.ready_seconds = round(time.monotonic() - self._launched, 1)
                self._ready["url"] = match.group(1)
                self._announced.set()
        self._announced.set()

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def output(self) -> str:
        """The last lines HAPI wrote (warnings and errors; for failure messages)."""
        return "\n".join(self._output)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> HapiServer:
        """Wait until GET /fhir/metadata answers 200; else stop HAPI and raise HapiError."""
        deadline = time.monotonic() + timeout
        self._announced.wait(timeout)
        self.base_url = self._ready.get("url", "")
        while self.base_url and self.running and time.monotonic() < deadline:
            if _metadata_ok(self.base_url):
                return self
            time.sleep(0.25)
        exited = not self.running
        self.stop()
        reason = "exited" if exited else f"was not ready after {timeout:.0f} s"
        last = "\n".join(list(self._output)[-30:]) or "(no output)"
        raise HapiError(f"HAPI FHIR {reason}:\n{last}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM by pid (Jetty and the database shut down), SIGKILL after `timeout` s."""
        _running.discard(self)
        terminate(self._process, timeout)

    def __repr__(self) -> str:
        return f"HapiServer(base_url={self.base_url!r}, pid={self.pid})"


_running: set[HapiServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


def _metadata_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/metadata", timeout=10) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def launch(java_opts: Sequence[str] = JAVA_OPTS) -> HapiServer:
    """Start the built HAPI on a free loopback port without waiting (see HapiServer.wait_ready)."""
    command = ["java", *java_opts, "-Dhapi.host=127.0.0.1", "-Dhapi.port=0",
               f"-Dhapi.parent-pid={os.getpid()}", "-jar", str(HAPI_JAR)]
    process = subprocess.Popen(
        command, cwd=HAPI_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # Ctrl-C reaches pytest only; its exit stops HAPI (parent-pid)
    )
    server = HapiServer(process)
    _running.add(server)
    return server


def start(*, timeout: float = START_TIMEOUT, java_opts: Sequence[str] = JAVA_OPTS
          ) -> HapiServer:
    """Start the built HAPI on a free loopback port and wait until /fhir/metadata answers."""
    return launch(java_opts).wait_ready(timeout)
