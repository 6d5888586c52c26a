"""Start a real OpenID provider (npm oidc-provider, tests/support/oidc/) on loopback for tests.

`start_oidc_provider(config)` runs `tests/support/oidc/start.mjs` with a JSON config (clients,
resource servers, accounts, token lifetimes: see the comment at the top of start.mjs) and
returns once the provider answers its discovery document. The `oidc_provider` fixture is a
factory that stops every provider it started at the end of the test. Both SMART Backend
Services tests (client_credentials + private_key_jwt) and browser sign-in tests (authorization
code) use it: give each its own clients.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localfhir import terminate

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
START_SCRIPT = OIDC_DIR / "start.mjs"
_READY = re.compile(r"oidc-provider ready: (http://\S+)")
_SETUP_HINT = "run ./dev setup (or: npm ci --prefix tests/support/oidc)"


class OidcProviderUnavailable(RuntimeError):
    """Node or the npm packages are missing, so no provider can run here."""


class OidcProvider:
    """A running oidc-provider process: its issuer URL, discovery document and output."""

    def __init__(self, process: subprocess.Popen[str], issuer: str, output: collections.deque):
        self._process = process
        self._output = output
        self.issuer = issuer
        self.pid = process.pid
        self._discovery: dict[str, Any] | None = None

    @property
    def discovery(self) -> dict[str, Any]:
        """The provider's `.well-known/openid-configuration` (fetched once)."""
        if self._discovery is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=10) as response:
                self._discovery = json.load(response)
        return self._discovery

    @property
    def token_endpoint(self) -> str:
        """Where client_credentials and authorization-code tokens are requested."""
        return self.discovery["token_endpoint"]

    @property
    def jwks_uri(self) -> str:
        """The provider's public signing keys (JWT access tokens, ID tokens)."""
        return self.discovery["jwks_uri"]

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self._process.poll() is None

    def output(self) -> str:
        """The provider's last lines of output (warnings, server errors)."""
        return "\n".join(self._output)

    def stop(self, timeout: float = 5.0) -> None:
        """End the provider by pid: SIGTERM, then SIGKILL after `timeout` seconds."""
        terminate(self._process, timeout)

    def __repr__(self) -> str:
        return f"OidcProvider(issuer={self.issuer!r}, pid={self.pid})"


def _node() -> str:
    node = os.environ.get("LOCAL_FHIR_NODE") or shutil.which("node")
    if not node:
        raise OidcProviderUnavailable("Node.js >= 20 is needed for oidc-provider; none is on PATH")
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise OidcProviderUnavailable(f"oidc-provider is not installed: {_SETUP_HINT}")
    return node


def _drain(process: subprocess.Popen[str], output: collections.deque, ready: dict,
           event: threading.Event) -> None:
    # Keeps reading so the provider never blocks on a full pipe; remembers the last lines.
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line.rstrip("\n"))
        match = _READY.search(line)
        if match and "issuer" not in ready:
            ready["issuer"] = match.group(1)
            event.set()
    event.set()


def start_oidc_provider(config: dict[str, Any], *, timeout: float = 60.0) -> OidcProvider:
    """Start oidc-provider with `config` (see start.mjs) and wait until discovery answers."""
    node = _node()
    payload = {"parentPid": os.getpid(), **config}
    process = subprocess.Popen(
        [node, str(START_SCRIPT), "-"],
        cwd=OIDC_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal Ctrl-C reaches only the test run, whose exit stops us
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload))
    process.stdin.close()
    output: collections.deque = collections.deque(maxlen=200)
    ready: dict = {}
    event = threading.Event()
    threading.Thread(target=_drain, args=(process, output, ready, event), daemon=True,
                     name=f"oidc-provider-{process.pid}").start()
    event.wait(timeout)
    provider = OidcProvider(process, ready.get("issuer", ""), output)
    deadline = time.monotonic() + timeout
    while provider.issuer and provider.running and time.monotonic() < deadline:
        try:
            provider.discovery  # noqa: B018 - fetched to prove the provider answers
            return provider
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    provider.stop()
    last = "\n".join(list(output)[-20:]) or "(no output)"
    raise RuntimeError(f"oidc-provider did not start:\n{last}")


@pytest.fixture
def oidc_provider() -> Iterator[Callable[[dict[str, Any]], OidcProvider]]:
    """Factory: `oidc_provider(config)` starts a provider, stopped when the test ends.

    Skips where Node or the npm packages are missing, except in CI (CI=true), where it fails.
    """
    started: list[OidcProvider] = []

    def start(config: dict[str, Any]) -> OidcProvider:
        try:
            provider = start_oidc_provider(config)
        except OidcProviderUnavailable as exc:
            if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
                pytest.fail(f"CI must run the OpenID provider tests but: {exc}", pytrace=False)
            pytest.skip(str(exc))
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.stop()
