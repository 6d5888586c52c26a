"""A request id for every web request: the caller's X-Request-ID (a plain token) or a new one,
set for the log lines of the request and echoed in the answer."""

from __future__ import annotations

from flask import Flask, Response, g, request

from service.core.log_setup import REQUEST_ID, request_id_from


def install_request_ids(app: Flask) -> None:
    """Register the hooks; call before any other before_request (auth logs carry the id)."""

    @app.before_request
    def _bind() -> None:
        g.request_id_token = REQUEST_ID.set(request_id_from(request.headers.get("X-Request-ID")))

    @app.after_request
    def _echo(response: Response) -> Response:
        response.headers["X-Request-ID"] = REQUEST_ID.get()
        return response

    @app.teardown_request
    def _unbind(exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            REQUEST_ID.reset(token)
