"""The job API users know from VideoSDK: `WorkerJob`, `JobContext`, `RoomOptions`.

``WorkerJob(entrypoint, jobctx).start()`` runs ``entrypoint(ctx)`` in this process until the
room ends or the process is asked to stop (SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from parley.edge import Call, Connection, ConnectionClosed, Edge, ParticipantJoined, User

logger = logging.getLogger("parley.job")

_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "parley_job", default=None
)

_SHUTDOWN_CALLBACK_TIMEOUT = 15.0


def current_job_context() -> JobContext | None:
    return _current.get()


@dataclass(slots=True)
class RoomOptions:
    """Where the agent goes. ``edge`` selects the transport (an Edge or a spec string);
    by default the installed local WebRTC edge. Unknown options are an error."""

    room_id: str | None = None
    name: str = "Agent"
    auth_token: str | None = None
    agent_participant_id: str = "agent"
    call_type: str = "default"
    edge: Edge | str | None = None
    vision: bool = False
    playground: bool = True
    auto_end_session: bool = True
    session_timeout_seconds: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> RoomOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown RoomOptions: {', '.join(unknown)}; "
                f"valid options: {', '.join(sorted(known))}"
            )
        return cls(**options)


class JobContext:
    def __init__(
        self, *, room_options: RoomOptions | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self.room_options = room_options or RoomOptions()
        self.metadata = metadata or {}
        self.edge: Edge | None = None
        self.call: Call | None = None
        self.connection: Connection | None = None
        self._shutdown = asyncio.Event()
        self._callbacks: list[Callable[[], Awaitable[Any]]] = []
        self._participant_joined = asyncio.Event()
        self._token: contextvars.Token[JobContext | None] | None = None
        self.sessions: list[Any] = []  # AgentSessions started on this context's connection

    def _activate(self) -> None:
        if self._token is None:
            self._token = _current.set(self)

    async def connect(self) -> Connection:
        """Create the room on the Edge and join it as the agent."""
        self._activate()
        options = self.room_options
        edge = options.edge or "webrtc"
        if isinstance(edge, str):
            from parley.plugins import resolve

            edge = resolve("edge", edge)
        assert isinstance(edge, Edge)
        self.edge = edge
        room_id = options.room_id or f"room-{uuid.uuid4().hex[:8]}"
        self.call = await edge.create_call(options.call_type, room_id, **options.extra)
        user = User(name=options.name, id=options.agent_participant_id)
        self.connection = await edge.join(self.call, user)
        self.connection.events.subscribe(self._on_event)
        if self.connection.humans():
            self._participant_joined.set()
        return self.connection

    def _on_event(self, event: object) -> None:
        if isinstance(event, ParticipantJoined) and not event.participant.is_agent:
            self._participant_joined.set()
        elif isinstance(event, ConnectionClosed):
            self._shutdown.set()

    async def wait_for_participant(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._participant_joined.wait(), timeout)

    def add_shutdown_callback(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._callbacks.append(callback)

    async def wait_for_shutdown(self) -> None:
        await self._shutdown.wait()

    def end(self) -> None:
        """Say the room is over (its session closed, or a signal came): `wait_for_shutdown`
        returns; `shutdown` does the cleaning up."""
        self._shutdown.set()

    async def shutdown(self) -> None:
        """Run shutdown callbacks, close sessions and leave the room. Idempotent."""
        if self._shutdown.is_set() and self.connection is None:
            return
        self._shutdown.set()
        for callback in self._callbacks:
            try:
                await asyncio.wait_for(callback(), _SHUTDOWN_CALLBACK_TIMEOUT)
            except Exception as exc:
                logger.warning("shutdown callback %r failed: %s", callback, exc)
        self._callbacks = []
        for session in self.sessions:
            await session.close()
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.leave()


class WorkerJob:
    def __init__(
        self,
        entrypoint: Callable[[JobContext], Awaitable[None]],
        jobctx: JobContext | Callable[[], JobContext] | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(entrypoint):
            raise TypeError("entrypoint must be an async function taking a JobContext")
        self.entrypoint = entrypoint
        self.jobctx = jobctx

    def start(self) -> None:
        """Run the job in this process until it ends (blocks)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        ctx = self.jobctx() if callable(self.jobctx) else (self.jobctx or JobContext())
        ctx._activate()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, ctx.end)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / platform
                pass
        try:
            await self.entrypoint(ctx)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await ctx.shutdown()
