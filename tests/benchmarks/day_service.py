"""The service as the hospital-day benchmark runs it: its own process (so its CPU is its own),
counting the notifications it received, the screenings it ran and its FHIR requests, which
`GET /_bench` answers. `--write-for-everyone` restores the behaviour before issue 21 (every
screened patient got a ResearchSubject) for the "before" column; nothing else changes."""

from __future__ import annotations

import argparse
import json
import os
import threading
from typing import Any

from werkzeug.serving import make_server

from service.core.settings import Settings
from service.web.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-for-everyone", action="store_true")
    args = parser.parse_args()
    if args.write_for_everyone:
        import service.usecases.screening as screening

        screening.is_candidate = lambda *a, **k: True  # type: ignore[assignment]
    settings = Settings.from_env(os.environ)
    app = create_app(settings)
    screener = app.extensions["eligibility"].screener
    counts = {"notifications": 0, "screenings": 0}
    lock = threading.Lock()
    screen = screener.screen

    def counted_screen(*a: Any, **k: Any) -> Any:
        with lock:
            counts["screenings"] += 1
        return screen(*a, **k)

    screener.screen = counted_screen  # type: ignore[method-assign]
    inner = app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/_bench":
            times = os.times()
            body = json.dumps({**counts, "fhir_requests": screener.client().request_count,
                               "cpu_seconds": times.user + times.system}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path.startswith("/fhir-notify"):
            with lock:
                counts["notifications"] += 1
        return inner(environ, start_response)

    app.wsgi_app = wsgi  # type: ignore[method-assign]
    app.extensions["eligibility"].queue.start_embedded(args.workers)
    make_server("127.0.0.1", args.port, app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
