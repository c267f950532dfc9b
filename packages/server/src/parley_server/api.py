"""The default FastAPI app: the session API, health, readiness and metrics.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures at
runtime, and the request body's model is built from the `ServeOptions`.)
"""

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path as FilePath
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
    SessionStartTimedOut,
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
    require_json_object,
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
    StartSessionRequest,
    start_request_model,
)
from parley_server.permissions import Permissions
from parley_server.shutdown import CancelledAtShutdownMiddleware

if TYPE_CHECKING:
    from parley.launcher import AgentLauncher

    from parley_server.metrics import ServerMetrics
    from parley_server.options import ServeOptions

_SESSION_ID = re.compile(SESSION_ID_SCHEMA["pattern"])
VIDEO_TRACK_OVERRIDE = "video_track_override"
STORE_PROBE_TIMEOUT = 0.5  # /ready answers within about this long, even with the store hung

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
        415: "Body is not JSON (a start request needs Content-Type: application/json)",
        429: "A session limit is reached",
        500: "The agent failed to start",
        503: "Not admitting sessions (not started or draining), or the session store is down",
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


def create_app(
    launcher: "AgentLauncher",
    options: "ServeOptions",
    *,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    metrics: "ServerMetrics",
) -> FastAPI:
    """The default app: ``launcher``'s session API, shaped by ``options``; ``metrics`` is
    served at ``/metrics`` when ``options.metrics`` is on."""
    app = FastAPI(
        title="Parley",
        version=parley_version,
        summary="Start, inspect and close agent sessions; health, readiness and metrics.",
        lifespan=lifespan,
        docs_url="/docs" if options.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if options.docs else None,
    )
    install_error_handlers(app)
    # Health first: probes match without other routes.
    app.include_router(health_routes(launcher, metrics if options.metrics else None))
    app.include_router(session_routes(launcher, options))
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
    app.add_middleware(CancelledAtShutdownMiddleware)  # outermost
    return app


def session_routes(launcher: "AgentLauncher", options: "ServeOptions") -> APIRouter:
    request_model = start_request_model(options.session_params)
    router = APIRouter(prefix="/calls/{call_id}/sessions", tags=["sessions"])
    call_checked = [Depends(valid_call_id)]
    permissions = Permissions(options)
    override_dir = options.video_track_override_dir

    @router.post(
        "",
        status_code=201,
        response_model=SessionStarted,
        summary="Start an agent session on a call",
        dependencies=[
            *call_checked,
            Depends(permissions.start_session),
            Depends(require_json_object),
        ],
        responses=_errors(400, 401, 403, 413, 415, 429, 500, 503),
    )
    async def start_session(
        call_id: CallId,
        response: Response,
        body: Annotated[request_model, Body()],  # type: ignore[valid-type]
    ) -> SessionStarted:
        """Create an agent and put it on the call. Returns once the agent has joined and
        its session runs (201); a join that fails answers 500 and leaves a ``failed``
        record that GET shows for a while."""
        request: StartSessionRequest = body
        params = request.param_kwargs()
        if VIDEO_TRACK_OVERRIDE in params:
            params[VIDEO_TRACK_OVERRIDE] = await _allowed_video_file(
                params[VIDEO_TRACK_OVERRIDE], override_dir
            )
        try:
            session = await launcher.start_session(call_id, request.call_type, **params)
        except StoreUnavailable:
            raise _store_unavailable() from None
        except InvalidCallId as exc:
            raise ApiError(400, "invalid_call_id", str(exc)) from None
        except CallSessionLimitExceeded as exc:
            raise ApiError(429, "call_session_limit", f"{exc}; close one first") from None
        except SessionLimitExceeded as exc:
            raise ApiError(429, "session_limit", f"{exc}; retry later or on another node") from None
        except LauncherNotRunning as exc:
            raise ApiError(503, "not_admitting", f"{exc}; retry on another node") from None
        except SessionStartTimedOut as exc:
            raise ApiError(504, "session_start_timeout", str(exc)) from None
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
        dependencies=[*call_checked, Depends(permissions.list_sessions)],
        responses=_errors(400, 401, 403, 503),
    )
    async def list_sessions(call_id: CallId) -> SessionList:
        records = await _store_call(launcher.list_sessions(call_id))
        return SessionList(call_id=call_id, sessions=[SessionInfo.of(r) for r in records])

    @router.get(
        "/{session_id}",
        response_model=SessionInfo,
        summary="A session's state, node and metrics, wherever it runs",
        dependencies=[*call_checked, Depends(valid_session_id), Depends(permissions.view_session)],
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
            Depends(permissions.close_session),
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


def health_routes(launcher: "AgentLauncher", server_metrics: "ServerMetrics | None") -> APIRouter:
    """``/health``, ``/ready``, and ``/metrics`` unless ``server_metrics`` is None."""
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=Health, summary="Liveness: the process answers")
    async def health() -> Health:
        return Health()

    @router.head("/health", include_in_schema=False)
    async def health_head() -> Response:
        return Response(status_code=200)

    @router.head("/ready", include_in_schema=False)
    async def ready_head() -> Response:
        ready = launcher.ready and await _store_answers(launcher)
        return Response(status_code=200 if ready else 503)

    @router.get(
        "/ready",
        response_model=Readiness,
        summary="Readiness: this node admits new sessions",
        responses={503: {"model": NotReady, "description": "Not admitting sessions"}},
    )
    async def ready() -> Any:
        """503 while the launcher is not started, drains, cannot reach its session store,
        or runs ``max_concurrent_sessions`` sessions."""
        store_healthy = await _store_answers(launcher)
        stats = launcher.stats()
        capacity = launcher.max_concurrent_sessions
        readiness = Readiness(
            ready=launcher.ready and store_healthy,
            running=launcher.running,
            draining=launcher.draining,
            store_healthy=store_healthy,
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

    if server_metrics is not None:

        @router.get(
            "/metrics",
            response_class=PlainTextResponse,
            summary="Prometheus metrics of this node",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        )
        async def metrics() -> Response:
            return Response(server_metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _store_call(operation: Any) -> Any:
    try:
        return await operation
    except StoreUnavailable:
        raise _store_unavailable() from None
    except InvalidCallId as exc:
        raise ApiError(400, "invalid_call_id", str(exc)) from None


async def _store_answers(launcher: "AgentLauncher") -> bool:
    """The registry saw no failure since its last success, and the store answers a ping now
    (within `STORE_PROBE_TIMEOUT`): a probe notices an outage even when no request has."""
    if not launcher.registry.healthy:
        return False
    try:
        return await asyncio.wait_for(launcher.registry.store.ping(), STORE_PROBE_TIMEOUT)
    except (TimeoutError, StoreUnavailable):
        return False


def _store_unavailable() -> ApiError:
    return ApiError(
        503,
        "store_unavailable",
        "the session store is unreachable; retry shortly",
        {"Retry-After": "5"},
    )


async def _allowed_video_file(value: Any, directory: Any) -> str:
    """``params.video_track_override`` from HTTP: a file under ``directory``, or 400. The
    error is the same whether or not another path exists, so it reveals nothing."""
    if directory is None:
        raise ApiError(
            400,
            "video_track_override_disabled",
            "params.video_track_override is not accepted over HTTP on this server "
            "(ServeOptions.video_track_override_dir enables it for one directory)",
        )

    def resolve() -> str | None:
        root = FilePath(directory).resolve()
        if not isinstance(value, str) or not value or "\x00" in value:
            return None
        path = (root / value).resolve()
        return str(path) if path.is_relative_to(root) and path.is_file() else None

    found = await asyncio.to_thread(resolve)
    if found is None:
        raise ApiError(
            400,
            "video_track_override_refused",
            "params.video_track_override must name a file in the server's video directory",
        )
    return found


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
