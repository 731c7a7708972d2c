"""Request id, access log and the last-resort error handler, as one pure ASGI middleware.

Logs the request id, method, path, status and duration only: never a query string, a header or a
body, since those may carry patient data. An exception that escapes the application is logged by
its type and the request id alone and answered with a 500 (when the response has not started).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

logger = logging.getLogger("screening.service")

REQUEST_ID_HEADER = b"x-request-id"
_GOOD_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
_PATH_LIMIT = 200


def _loggable(path: str) -> str:
    """The request path as one log line can hold it: the client chooses it (a 404 may be any
    text, percent-decoded), so control and non-ASCII characters are escaped and it is cut short."""
    escaped = path.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= _PATH_LIMIT else escaped[:_PATH_LIMIT] + "..."


class RequestContext:
    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(REQUEST_ID_HEADER, b"")
        request_id = given.decode() if _GOOD_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: dict) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - the catch-all: a client must never see a traceback
            logger.error("request_id=%s unhandled %s", request_id, type(exc).__name__)
            status = 500
            if not started:
                body = json.dumps({"error": "internal error", "request_id": request_id}).encode()
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                        (REQUEST_ID_HEADER, request_id.encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            logger.info("request_id=%s method=%s path=%s status=%d duration_ms=%.1f", request_id, scope.get("method"),
                        _loggable(scope.get("path") or ""), status, (time.perf_counter() - start) * 1000)
