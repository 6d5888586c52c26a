"""Run the local FHIR server in the foreground: python -m localfhir [--port 8090] [--host H]."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from localfhir import SERVER_SCRIPT, LocalFhirError, check_node_modules, find_node


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, check node and the npm packages, then run server.mjs until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m localfhir",
        description="In-memory FHIR R4 server for development (data is lost on exit).",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_FHIR_PORT", "8090")))
    parser.add_argument("--host", default=os.environ.get("LOCAL_FHIR_HOST", "127.0.0.1"))
    args = parser.parse_args(argv)
    try:
        node = find_node()
        check_node_modules()
    except LocalFhirError as exc:
        print(f"localfhir: {exc}", file=sys.stderr)
        return 2
    command = [node, str(SERVER_SCRIPT), "--port", str(args.port), "--host", args.host]
    process = subprocess.Popen(command, cwd=SERVER_SCRIPT.parent)
    try:
        return process.wait()
    except KeyboardInterrupt:
        # node got the same SIGINT from the terminal and is shutting down; wait for it.
        try:
            return process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


if __name__ == "__main__":
    sys.exit(main())
