"""The request body size limit, as ASGI middleware: by Content-Length before the body is
read, and while a body without one streams in."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

from .errors import ApiError, error_body

__all__ = ["BodyLimit"]


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413 body_too_large (JSON, like every error)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_bytes:
            await _json_response(send, self._error())
            return
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # the app's handler for HTTPException answers
                raise HTTPException(413, detail=self._error())
            return message

        await self.app(scope, limited, send)

    def _error(self) -> ApiError:
        return ApiError(413, "body_too_large", f"the request body is over the limit of {self.max_bytes} bytes")


async def _json_response(send, error: ApiError) -> None:
    body = json.dumps(error_body(error)).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
