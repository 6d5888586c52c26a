"""A Flask app served on a free loopback port in a thread, for browser and OIDC tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serve(app: Flask, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (http://127.0.0.1:PORT)."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for an app whose PUBLIC_URL must be known first)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
