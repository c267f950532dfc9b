"""JSON errors everywhere: ``{"error": code, "detail": message}`` with the right status.

Validation errors become 400 (not FastAPI's 422), unknown routes 404, oversized bodies 413 and
non-JSON bodies 415, all in the same shape.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("parley.server")


# How a JSON value that is not an object is named back to the client (JSON's words, not Python's).
_JSON_KINDS = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
}


class ApiError(HTTPException):
    """An HTTP error with a machine-readable ``error`` code."""

    def __init__(
        self, status_code: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.error = error


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"the request body is larger than {limit} bytes; send a smaller body",
        )


def error_code(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "detail": detail, **extra}


def error_response(
    status_code: int,
    error: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(error_body(error, detail, **extra), status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error = exc.error if isinstance(exc, ApiError) else error_code(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and not isinstance(exc, ApiError) and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs for the API"
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and detail == "Method Not Allowed":
        # Starlette names only the first route's methods; list every route on this path.
        allowed = _allowed_methods(request) or headers.get("Allow", "")
        headers["Allow"] = allowed
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    if exc.status_code in (204, 304):  # no body allowed
        return Response(status_code=exc.status_code, headers=headers)
    return error_response(exc.status_code, error, detail, headers)


def _allowed_methods(request: Request) -> str:
    methods = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            methods.append(method)
    return ", ".join(methods)


def _loc(parts: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in parts]


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(
            400, "invalid_json", "the request body is not valid JSON; send a JSON object"
        )
    fields = [{"loc": _loc(p.get("loc", ())), "message": str(p.get("msg", ""))} for p in problems]
    summary = "; ".join(f"{'.'.join(str(x) for x in f['loc'])}: {f['message']}" for f in fields[:5])
    return error_response(400, "invalid_request", summary or "invalid request", errors=fields)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "unexpected server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def require_json_object(request: Request) -> None:
    """A dependency: the body must be JSON (415 otherwise, even when empty: a cross-site form
    or ``text/plain`` POST needs no CORS preflight) and, when not empty, a JSON object in
    UTF-8 without a byte-order mark (400 otherwise)."""
    content_type = request.headers.get("content-type")
    if not is_json(content_type):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be a JSON object sent with Content-Type: application/json, got "
            f"{content_type or 'no Content-Type'}",
        )
    body = await request.body()
    if not body.strip():
        return
    if body.startswith(b"\xef\xbb\xbf"):
        raise ApiError(
            400, "invalid_json", "the body starts with a byte-order mark; send plain UTF-8"
        )
    try:
        parsed = json.loads(body.decode("utf-8"))
    except ValueError:
        raise ApiError(
            400, "invalid_json", "the request body is not valid JSON; send a JSON object"
        ) from None
    if not isinstance(parsed, dict):
        raise ApiError(
            400,
            "invalid_request",
            f"the body must be a JSON object, got {_JSON_KINDS[type(parsed)]}; send {{}} at least",
        )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLarge(self.max_bytes)
        response = error_response(413, exc.error, str(exc.detail), {"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights answered in the JSON error shape."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        reason = bytes(response.body).decode(errors="replace") or "CORS preflight refused"
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        headers.pop("content-type", None)
        return error_response(400, "cors_refused", reason, headers)
