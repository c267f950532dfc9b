"""The default FastAPI app: the session API, health, readiness and metrics.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
runtime, and the request body's model is chosen per Runner.)
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Path, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from parley import __version__ as parley_version
from parley.launcher import (
    CallSessionLimitExceeded,
    InvalidCallId,
    LauncherNotRunning,
    SessionLimitExceeded,
    SessionStartFailed,
    validate_call_id,
)
from parley.store import StoreUnavailable
from prometheus_client import CONTENT_TYPE_LATEST

from parley_server.errors import (
    ApiError,
    BodyLimitMiddleware,
    JSONCORSMiddleware,
    error_body,
    install_error_handlers,
    require_json,
)
from parley_server.models import (
    CALL_ID_SCHEMA,
    SESSION_ID_SCHEMA,
    ErrorResponse,
    Health,
    NotReady,
    Readiness,
    SessionClosing,
    SessionInfo,
    SessionList,
    SessionStarted,
    start_request_model,
)

if TYPE_CHECKING:
    from parley_server.runner import Runner

_SESSION_ID = re.compile(SESSION_ID_SCHEMA["pattern"])

CallId = Annotated[
    str, Path(description="The call's id: 1-128 characters from a-z, 0-9, '_' and '-'")
]
SessionId = Annotated[str, Path(description="A session id returned when it started")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Invalid call id, session id or body",
        401: "Refused by a permission callback: not authenticated",
        403: "Refused by a permission callback: not allowed",
        404: "No such session",
        413: "Body too large",
        415: "Body is not JSON",
        429: "A session limit is reached",
        500: "The agent failed to start",
        503: "The server is not admitting sessions (not started or draining)",
    }
    return {code: {"model": ErrorResponse, "description": described[code]} for code in codes}


def valid_call_id(call_id: CallId) -> str:
    """Runs before permission callbacks, so they only ever see valid call ids."""
    try:
        return validate_call_id(call_id)
    except InvalidCallId as exc:
        raise ApiError(400, "invalid_call_id", str(exc)) from None


def valid_session_id(session_id: SessionId) -> str:
    if len(session_id) > 128 or not _SESSION_ID.match(session_id):
        raise ApiError(
            400,
            "invalid_session_id",
            f"invalid session_id {session_id[:40]!r}: use the id returned when the session "
            "started (1-128 characters from A-Z, a-z, 0-9, '_' and '-')",
        )
    return session_id


def create_app(runner: "Runner") -> FastAPI:
    options = runner.serve_options
    app = FastAPI(
        title="Parley",
        version=parley_version,
        summary="Start, inspect and close agent sessions; health, readiness and metrics.",
        lifespan=runner.lifespan,
        docs_url="/docs" if options.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if options.docs else None,
    )
    install_error_handlers(app)
    app.include_router(health_routes(runner))  # first: probes match without other routes
    app.include_router(session_routes(runner))
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimitMiddleware, max_bytes=options.max_body_bytes)
    if options.cors_allow_origins:
        app.add_middleware(
            JSONCORSMiddleware,
            allow_origins=list(options.cors_allow_origins),
            allow_methods=list(options.cors_allow_methods),
            allow_headers=list(options.cors_allow_headers),
            allow_credentials=options.cors_allow_credentials,
            max_age=options.cors_max_age,
        )
    return app


def session_routes(runner: "Runner") -> APIRouter:
    launcher = runner.launcher
    options = runner.serve_options
    request_model = start_request_model(options.session_params)
    router = APIRouter(prefix="/calls/{call_id}/sessions", tags=["sessions"])
    call_checked = [Depends(valid_call_id)]

    @router.post(
        "",
        status_code=201,
        response_model=SessionStarted,
        summary="Start an agent session on a call",
        dependencies=[*call_checked, Depends(options.can_start_session), Depends(require_json)],
        responses=_errors(400, 401, 403, 413, 415, 429, 500, 503),
    )
    async def start_session(
        call_id: CallId,
        response: Response,
        body: Annotated[request_model | None, Body()] = None,  # type: ignore[valid-type]
    ) -> SessionStarted:
        """Create an agent and put it on the call. Returns once the agent has joined and
        its session runs (201); a join that fails answers 500 and leaves a ``failed``
        record that GET shows for a while."""
        request = body if body is not None else request_model()
        try:
            session = await launcher.start_session(
                call_id, request.call_type, **request.param_kwargs()
            )
        except InvalidCallId as exc:
            raise ApiError(400, "invalid_call_id", str(exc)) from None
        except CallSessionLimitExceeded as exc:
            raise ApiError(429, "call_session_limit", f"{exc}; close one first") from None
        except SessionLimitExceeded as exc:
            raise ApiError(429, "session_limit", f"{exc}; retry later or on another node") from None
        except LauncherNotRunning as exc:
            raise ApiError(503, "not_admitting", f"{exc}; retry on another node") from None
        except SessionStartFailed:
            raise ApiError(
                500,
                "session_start_failed",
                f"the agent for call {call_id!r} failed to start; see the server log",
            ) from None
        response.headers["Location"] = f"/calls/{call_id}/sessions/{session.id}"
        return SessionStarted(
            session_id=session.id,
            call_id=call_id,
            call_type=request.call_type,
            state=session.state,
            started_at=_utc(session.started_at),
            node_id=launcher.registry.node_id,
        )

    @router.get(
        "",
        response_model=SessionList,
        summary="List the call's sessions on every node",
        dependencies=[*call_checked, Depends(options.can_list_sessions)],
        responses=_errors(400, 401, 403, 503),
    )
    async def list_sessions(call_id: CallId) -> SessionList:
        records = await _store_call(launcher.list_sessions(call_id))
        return SessionList(call_id=call_id, sessions=[SessionInfo.of(r) for r in records])

    @router.get(
        "/{session_id}",
        response_model=SessionInfo,
        summary="A session's state, node and metrics, wherever it runs",
        dependencies=[*call_checked, Depends(valid_session_id), Depends(options.can_view_session)],
        responses=_errors(400, 401, 403, 404, 503),
    )
    async def get_session(call_id: CallId, session_id: SessionId) -> SessionInfo:
        record = await _store_call(launcher.get_session_info(call_id, session_id))
        if record is None:
            raise _not_found(call_id, session_id)
        return SessionInfo.of(record)

    close_options: dict[str, Any] = {
        "status_code": 202,
        "response_model": SessionClosing,
        "dependencies": [
            *call_checked,
            Depends(valid_session_id),
            Depends(options.can_close_session),
        ],
        "responses": _errors(400, 401, 403, 404, 413, 503),
    }

    async def close(call_id: str, session_id: str) -> SessionClosing:
        if not await _store_call(launcher.request_close_session(call_id, session_id)):
            raise _not_found(call_id, session_id)
        return SessionClosing(session_id=session_id, call_id=call_id)

    @router.delete("/{session_id}", summary="Close a session", **close_options)
    async def delete_session(call_id: CallId, session_id: SessionId) -> SessionClosing:
        """Ask the owning node to close the session (202); it closes asynchronously."""
        return await close(call_id, session_id)

    @router.post("/{session_id}/close", summary="Close a session (sendBeacon)", **close_options)
    async def close_session(call_id: CallId, session_id: SessionId) -> SessionClosing:
        """Same as DELETE, as a POST that ``navigator.sendBeacon`` can send when a page
        closes; any body or content type is accepted and ignored."""
        return await close(call_id, session_id)

    return router


def health_routes(runner: "Runner") -> APIRouter:
    launcher = runner.launcher
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=Health, summary="Liveness: the process answers")
    async def health() -> Health:
        return Health()

    @router.get(
        "/ready",
        response_model=Readiness,
        summary="Readiness: this node admits new sessions",
        responses={503: {"model": NotReady, "description": "Not admitting sessions"}},
    )
    async def ready() -> Any:
        """503 while the launcher is not started, drains, cannot reach its session store,
        or runs ``max_concurrent_sessions`` sessions."""
        stats = launcher.stats()
        capacity = launcher.max_concurrent_sessions
        readiness = Readiness(
            ready=launcher.ready,
            running=launcher.running,
            draining=launcher.draining,
            store_healthy=launcher.registry.healthy,
            sessions=stats.running,
            starting=stats.starting,
            capacity=capacity,
            node_id=launcher.registry.node_id,
        )
        if readiness.ready:
            return readiness
        reasons = []
        if not readiness.running:
            reasons.append("the launcher is not started")
        if readiness.draining:
            reasons.append("draining: finishing running sessions, admitting none")
        if not readiness.store_healthy:
            reasons.append("the session store is unreachable")
        if capacity is not None and stats.running + stats.starting >= capacity:
            reasons.append(f"at capacity: {stats.running + stats.starting} of {capacity} sessions")
        body = error_body(
            "not_ready", "; ".join(reasons) or "not ready", readiness=readiness.model_dump()
        )
        return JSONResponse(body, status_code=503)

    if runner.serve_options.metrics:

        @router.get(
            "/metrics",
            response_class=PlainTextResponse,
            summary="Prometheus metrics of this node",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        )
        async def metrics() -> Response:
            return Response(runner.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _store_call(operation: Any) -> Any:
    try:
        return await operation
    except StoreUnavailable:
        raise ApiError(
            503,
            "store_unavailable",
            "the session store is unreachable; retry shortly",
            {"Retry-After": "5"},
        ) from None
    except InvalidCallId as exc:
        raise ApiError(400, "invalid_call_id", str(exc)) from None


def _not_found(call_id: str, session_id: str) -> ApiError:
    return ApiError(
        404,
        "session_not_found",
        f"no session {session_id!r} on call {call_id!r} (it may have ended)",
    )


def _utc(timestamp: float | None) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)


def _document_ids(operation: dict[str, Any]) -> None:
    """The id rules are checked by code (so permission callbacks never see a bad id);
    this writes them into the schema too."""
    rules = {"call_id": CALL_ID_SCHEMA, "session_id": SESSION_ID_SCHEMA}
    for parameter in operation.get("parameters", ()):
        if parameter.get("in") == "path" and parameter.get("name") in rules:
            parameter.setdefault("schema", {}).update(rules[parameter["name"]])


def _openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents 422 for validation errors; this API answers 400 (documented)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
            separate_input_output_schemas=app.separate_input_output_schemas,
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
                    _document_ids(operation)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    return openapi
