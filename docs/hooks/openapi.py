"""MkDocs hook: the site carries the OpenAPI document the service serves, built from the code.

`openapi.json` in the built site is `service.web.openapi.build_openapi` for a service on
http://127.0.0.1:8000 (the servers entry is the only difference from what a deployment serves
at /openapi.json), so the HTTP API page can link it and it never drifts from the routes.
"""

from __future__ import annotations

import json
from typing import Any

from mkdocs.structure.files import File, Files

PUBLIC_URL = "http://127.0.0.1:8000"


def on_files(files: Files, config: Any) -> Files:
    from service.web.openapi import build_openapi

    document = json.dumps(build_openapi(PUBLIC_URL), indent=2, ensure_ascii=False) + "\n"
    files.append(File.generated(config, "openapi.json", content=document))
    return files
