"""Request and response bodies of the HTTP session API (they make its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from parley.events import SessionState
from parley.registry import SessionRecord
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    create_model,
)

CALL_ID_SCHEMA: dict[str, Any] = {"pattern": "^[a-z0-9_-]+$", "minLength": 1, "maxLength": 128}
SESSION_ID_SCHEMA: dict[str, Any] = {
    "pattern": "^[A-Za-z0-9_-]+$",
    "minLength": 1,
    "maxLength": 128,
}

# Keys of ``params`` become keyword arguments of create_agent/join_call: identifiers, and
# never the names join_call already takes positionally.
PARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
RESERVED_PARAMS = ("agent", "call_type", "call_id", "self")
MAX_PARAMS = 64


def _not_reserved(name: str) -> str:
    if name in RESERVED_PARAMS:
        raise ValueError(f"{name!r} is reserved; params may not use {', '.join(RESERVED_PARAMS)}")
    return name


ParamName = Annotated[str, StringConstraints(pattern=PARAM_NAME), AfterValidator(_not_reserved)]
Params = Annotated[
    dict[ParamName, Any],
    Field(max_length=MAX_PARAMS),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_PARAMS,
            "propertyNames": {"pattern": PARAM_NAME, "not": {"enum": list(RESERVED_PARAMS)}},
        }
    ),
]


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'call_type']")
    message: str


class ErrorResponse(BaseModel):
    """Every error: a stable machine-readable code and a message saying what to do."""

    error: str = Field(
        description="Machine-readable code, e.g. invalid_call_id", examples=["not_found"]
    )
    detail: str = Field(description="What was wrong and what to do")
    errors: list[FieldError] | None = Field(
        default=None, description="For invalid requests: each problem in the input"
    )


class StartSessionRequest(BaseModel):
    """Body of ``POST /calls/{call_id}/sessions``: a JSON object (``{}`` takes the defaults)."""

    model_config = ConfigDict(extra="forbid")

    call_type: str = Field(
        default="default",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The transport's call type",
    )
    params: Params = Field(
        default_factory=dict,
        description="Per-session keyword arguments for create_agent and join_call",
    )

    def param_kwargs(self) -> dict[str, Any]:
        return dict(self.params)


def start_request_model(params_model: type[BaseModel] | None) -> type[StartSessionRequest]:
    """The request body model; with ``params_model`` its ``params`` follow that model."""
    if params_model is None:
        return StartSessionRequest
    try:
        params_model()
        field: Any = Field(default_factory=params_model)
    except Exception:  # the model has required fields: then params are required too
        field = Field(...)

    class _Typed(StartSessionRequest):
        def param_kwargs(self) -> dict[str, Any]:
            params: BaseModel = self.params  # type: ignore[assignment]
            return params.model_dump()

    model: type[StartSessionRequest] = create_model(
        "StartSessionRequest",
        __base__=_Typed,
        params=(params_model, field),
    )
    return model


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class SessionStarted(BaseModel):
    session_id: str
    call_id: str
    call_type: str
    state: SessionState
    started_at: datetime
    node_id: str


class SessionInfo(BaseModel):
    session_id: str
    call_id: str
    call_type: str
    state: SessionState
    node_id: str = Field(description="The node that runs the session")
    node_address: str | None
    started_at: datetime
    heartbeat_at: datetime = Field(description="When the owning node last refreshed the record")
    metrics: dict[str, Any] = Field(description="Counters and the last turn's latency breakdown")
    error: str | None = Field(description="Why the session failed, if it did")

    @classmethod
    def of(cls, record: SessionRecord) -> SessionInfo:
        try:
            state = SessionState(record.state)
        except ValueError:  # a newer node may know states this one does not
            state = SessionState.FAILED if record.error else SessionState.STARTING
        return cls(
            session_id=record.session_id,
            call_id=record.call_id,
            call_type=record.call_type,
            state=state,
            node_id=record.node_id,
            node_address=record.node_address,
            started_at=_utc(record.started_at),
            heartbeat_at=_utc(record.heartbeat_at),
            metrics=dict(record.metrics),
            error=record.error,
        )


class SessionList(BaseModel):
    call_id: str
    sessions: list[SessionInfo]


class SessionClosing(BaseModel):
    session_id: str
    call_id: str
    status: Literal["closing"] = "closing"


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    running: bool
    draining: bool
    store_healthy: bool
    sessions: int = Field(description="Sessions running on this node")
    starting: int = Field(description="Sessions being started on this node")
    capacity: int | None = Field(description="max_concurrent_sessions (null: unlimited)")
    node_id: str


class NotReady(ErrorResponse):
    readiness: Readiness


def utc_now() -> datetime:
    return datetime.now(UTC)
