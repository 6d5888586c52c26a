"""Run the HTTP service under gunicorn on loopback for the latency and trigger benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.core.settings import Settings
from tests.benchmarks.synthetic import REPO_ROOT

CDS_ISSUER = "https://ehr.benchmark.invalid"
CDS_ALG = "RS384"


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class CdsKey:
    """The benchmark EHR's signing key; its public half is the issuer's key file."""

    private: Any
    public_pem_path: Path

    @classmethod
    def create(cls, folder: Path) -> CdsKey:
        """A fresh RSA key, its public PEM written to `folder`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = folder / "cds-issuer.pem"
        path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return cls(key, path)

    def token(self, audience: str) -> str:
        """A CDS Hooks client JWT (iss, aud, exp, iat, jti) as the spec asks for."""
        now = int(time.time())
        claims = {"iss": CDS_ISSUER, "sub": "benchmark", "aud": audience, "iat": now,
                  "exp": now + 300, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self.private, algorithm=CDS_ALG)


@dataclass
class RunningService:
    """A gunicorn process serving service.web.wsgi:build() with the benchmark's settings."""

    process: subprocess.Popen[bytes]
    url: str
    settings_env: dict[str, str]
    log_path: Path
    notes: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        """SIGTERM gunicorn by pid and wait; SIGKILL if it does not stop."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the service's log (for error messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_service(fhir_base_url: str, folder: Path, *, cds_key: CdsKey, webhook_secret: str,
                  coalesce_seconds: float, timeout: float = 60.0,
                  extra_env: dict[str, str] | None = None) -> RunningService:
    """Start gunicorn (the project's gunicorn_conf) and wait until /healthz answers.

    `extra_env` adds settings (the worklist benchmark's accounts database and session key).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings_env = {
        "FHIR_BASE_URL": fhir_base_url,
        "QUEUE_URL": f"sqlite:///{folder / 'queue.sqlite'}",
        "PUBLIC_URL": url,
        "BIND": f"127.0.0.1:{port}",
        "WEBHOOK_SECRET": webhook_secret,
        "CDS_ISSUERS": f"{CDS_ISSUER}|{cds_key.public_pem_path}",
        "COALESCE_SECONDS": str(coalesce_seconds),
        "EMBEDDED_WORKERS": str(Settings().embedded_workers),  # the default, stated
        **(extra_env or {}),
    }
    # The service's own defaults otherwise (gunicorn_conf: 1 process, 8 threads).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FHIR_", "QUEUE_", "CDS_", "WEBHOOK_", "ELIGIBILITY_"))
           and k not in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "EMBEDDED_WORKERS")}
    env.update(settings_env, PYTHONPATH=str(REPO_ROOT))
    log_path = folder / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:service.web.gunicorn_conf",
             "service.web.wsgi:build()"],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=log,
        )
    service = RunningService(process, url, settings_env, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{service.log_tail()}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return service
        except requests.RequestException:
            pass
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n"
                       f"{service.log_tail()}")
