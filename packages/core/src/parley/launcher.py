"""`AgentLauncher`: runs agent sessions on this node, within limits, and drains gracefully.

It is transport-agnostic: ``create_agent(**params)`` builds an agent, ``join_call(agent,
call_type, call_id, **params)`` puts it on the call (usually ``async with agent.join(call):
... await agent.finish()``). Sessions are recorded in a `SessionRegistry` so any node can
find or close any session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from parley.registry import SessionRecord, SessionRegistry
from parley.store import StoreUnavailable

if TYPE_CHECKING:
    from parley.agent import Agent
    from parley.session import AgentSession

logger = logging.getLogger("parley.launcher")

CALL_ID_PATTERN = re.compile(r"^[a-z0-9_-]+$")

# The params of the session being started, visible to parts and edges built for it (e.g. the
# WebRTC edge reads ``video_track_override``) without user code passing them along.
current_session_params: ContextVar[Mapping[str, Any]] = ContextVar(
    "parley_session_params", default=MappingProxyType({})
)
_MAX_CALL_ID = 128


class LauncherError(Exception):
    """Base of the launcher's typed errors."""


class InvalidCallId(LauncherError, ValueError):
    pass


class SessionLimitExceeded(LauncherError):
    """This node runs ``max_concurrent_sessions`` already."""


class CallSessionLimitExceeded(SessionLimitExceeded):
    """The call has ``max_sessions_per_call`` sessions already (across all nodes)."""


class LauncherNotRunning(LauncherError):
    """The launcher is not started, or is draining: it admits no new session."""


class SessionStartFailed(LauncherError):
    """``create_agent`` or ``join_call`` failed; the session is recorded as failed."""


class SessionStartTimedOut(SessionStartFailed):
    """``create_agent`` or ``join_call`` took longer than ``start_timeout``; its slots are free."""


def validate_call_id(call_id: str) -> str:
    if (
        not isinstance(call_id, str)
        or not CALL_ID_PATTERN.match(call_id)
        or len(call_id) > _MAX_CALL_ID
    ):
        raise InvalidCallId(
            f"invalid call_id {str(call_id)[:40]!r}: use 1-{_MAX_CALL_ID} characters from "
            "a-z, 0-9, '_' and '-'"
        )
    return call_id


@dataclass(slots=True)
class _Managed:
    session_id: str
    call_id: str
    call_type: str
    started: float  # monotonic
    task: asyncio.Task[None]
    session: AgentSession | None = None
    alone_since: float | None = None
    closing: bool = False


@dataclass(slots=True)
class LauncherStats:
    running: int
    starting: int
    draining: bool
    ready: bool
    failed_starts: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


class AgentLauncher:
    """Starts, limits, watches and drains this node's sessions.

    ``start_timeout`` (default 30 s) bounds a start from calling ``create_agent`` until
    ``join_call`` has the session started: a start that takes longer is cancelled, frees its
    slots, is recorded as failed and raises `SessionStartFailed`, so a stuck provider or edge
    never holds the node's capacity.

    ``agent_idle_timeout`` (default 60 s) closes a session that has been alone on its call
    that long; ``None`` or ``0`` turns it off (0 as in Vision Agents).
    ``max_session_duration_seconds`` closes a session that old; ``None`` (default) for none.
    """

    def __init__(
        self,
        create_agent: Callable[..., Awaitable[Agent]],
        join_call: Callable[..., Awaitable[None]],
        *,
        max_concurrent_sessions: int | None = None,
        max_sessions_per_call: int | None = None,
        max_session_duration_seconds: float | None = None,
        agent_idle_timeout: float | None = 60.0,
        maintenance_interval: float = 5.0,
        registry: SessionRegistry | None = None,
        drain_timeout: float = 30.0,
        start_timeout: float = 30.0,
        warm_up: bool = True,
    ) -> None:
        for name, value in (
            ("max_concurrent_sessions", max_concurrent_sessions),
            ("max_sessions_per_call", max_sessions_per_call),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), got {value}")
        for name, timing in (
            ("maintenance_interval", maintenance_interval),
            ("start_timeout", start_timeout),
        ):
            if timing <= 0:
                raise ValueError(f"{name} must be positive, got {timing}")
        if agent_idle_timeout is not None and agent_idle_timeout < 0:
            raise ValueError(
                f"agent_idle_timeout must be >= 0 (0 or None: off), got {agent_idle_timeout}"
            )
        if max_session_duration_seconds is not None and max_session_duration_seconds <= 0:
            raise ValueError(
                "max_session_duration_seconds must be positive (or None for no limit), "
                f"got {max_session_duration_seconds}"
            )
        self.create_agent = create_agent
        self.join_call = join_call
        self.max_concurrent_sessions = max_concurrent_sessions
        self.max_sessions_per_call = max_sessions_per_call
        self.max_session_duration_seconds = max_session_duration_seconds
        self.agent_idle_timeout = agent_idle_timeout or None
        self.maintenance_interval = maintenance_interval
        self.drain_timeout = drain_timeout
        self.start_timeout = start_timeout
        self.warm_up = warm_up
        if registry is None:
            from parley.stores.memory import MemoryStore

            registry = SessionRegistry(MemoryStore())
        self.registry = registry
        self._sessions: dict[str, _Managed] = {}
        self._starting = 0
        self._failed_starts = 0
        self._running = False
        self._draining = False
        self._maintenance: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def ready(self) -> bool:
        """Admitting sessions: started, not draining, store reachable, below capacity."""
        at_capacity = (
            self.max_concurrent_sessions is not None
            and len(self._sessions) + self._starting >= self.max_concurrent_sessions
        )
        return self._running and not self._draining and self.registry.healthy and not at_capacity

    async def start(self) -> None:
        if self._running:
            return
        self.registry.on_close_requested = self._on_close_requested
        self.registry.capacity = self.max_concurrent_sessions
        try:
            await self.registry.start()
        except StoreUnavailable as exc:
            # Start anyway: the registry recovers when the store returns; /ready says not ready.
            logger.error("session store unreachable at start: %s", exc)
        # Plugin discovery (entry points, pluggy, the plugins' entry modules) is one-time work
        # every session needs for its lifecycle hooks: done here, the first call does not pay it.
        from parley.plugins.manager import plugin_manager

        await asyncio.to_thread(plugin_manager)
        if self.warm_up:
            await self._warm_up()
        self._running = True
        self._draining = False
        self._maintenance = asyncio.create_task(self._maintenance_loop(), name="parley-maintenance")

    async def _warm_up(self) -> None:
        """Build one agent and warm its parts, so models load before the first call."""
        try:
            agent = await self.create_agent()
        except TypeError:
            return  # create_agent needs per-session params; nothing to warm generically
        except Exception as exc:
            logger.warning("warm-up: create_agent failed: %s", exc)
            return
        parts = [agent.llm, agent.stt, agent.tts, agent.vad, agent.turn_detector]
        for part in parts:
            if part is not None and not isinstance(part, str) and hasattr(part, "warm_up"):
                try:
                    await part.warm_up()
                except Exception as exc:
                    logger.warning("warm-up of %r failed: %s", part, exc)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop admitting, let sessions finish for up to ``drain_timeout`` s, then close them."""
        if not self._running:
            return
        self._draining = True
        try:
            await self.registry.set_draining(True)
        except StoreUnavailable:
            pass
        timeout = self.drain_timeout if drain_timeout is None else drain_timeout
        tasks = [m.task for m in self._sessions.values()]
        if tasks and timeout > 0:
            await asyncio.wait(tasks, timeout=timeout)
        await asyncio.gather(*(self.close_session(sid) for sid in list(self._sessions)))
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
        await self.registry.stop()
        self._running = False

    async def __aenter__(self) -> AgentLauncher:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- sessions ------------------------------------------------------------------------------

    async def start_session(
        self, call_id: str, call_type: str = "default", **params: Any
    ) -> AgentSession:
        """Create an agent and put it on ``call_id``; returns once the session has started.

        ``params`` reach ``create_agent`` and ``join_call``. Raises `InvalidCallId`,
        `LauncherNotRunning`, `SessionLimitExceeded`, `CallSessionLimitExceeded` or
        `SessionStartFailed`.
        """
        validate_call_id(call_id)
        if not self._running or self._draining:
            raise LauncherNotRunning(
                "not admitting sessions: the launcher is "
                + ("draining" if self._draining else "not started")
            )
        limit = self.max_concurrent_sessions
        if limit is not None and len(self._sessions) + self._starting >= limit:
            raise SessionLimitExceeded(f"this node runs its maximum of {limit} sessions")
        self._starting += 1
        session_id = f"sess_{uuid.uuid4().hex[:12]}"
        reserved = False
        try:
            if not await self.registry.reserve(call_id, session_id, self.max_sessions_per_call):
                raise CallSessionLimitExceeded(
                    f"call {call_id!r} already has its maximum of "
                    f"{self.max_sessions_per_call} sessions"
                )
            reserved = True
            return await self._launch(session_id, call_id, call_type, params)
        except SessionStartFailed:
            raise  # recorded as failed; its slot is already free
        except BaseException:
            if reserved and session_id not in self._sessions:
                await self._release(call_id, session_id)
            raise
        finally:
            self._starting -= 1

    async def _launch(
        self, session_id: str, call_id: str, call_type: str, params: dict[str, Any]
    ) -> AgentSession:
        token = current_session_params.set(MappingProxyType(dict(params)))
        try:
            # The session's task copies this context, so its edge and parts see the params.
            return await self._launch_in_context(session_id, call_id, call_type, params)
        finally:
            current_session_params.reset(token)

    async def _launch_in_context(
        self, session_id: str, call_id: str, call_type: str, params: dict[str, Any]
    ) -> AgentSession:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        try:
            agent = await asyncio.wait_for(self.create_agent(**params), self.start_timeout)
        except TimeoutError as exc:
            timed_out = TimeoutError(f"create_agent did not return within {self._timeout_text}")
            await self._record_failure(session_id, call_id, call_type, timed_out)
            raise SessionStartTimedOut(str(timed_out)) from exc
        except Exception as exc:
            await self._record_failure(session_id, call_id, call_type, exc)
            raise SessionStartFailed(f"create_agent failed: {exc}") from exc
        agent.session_id = session_id
        started = agent.session_started
        task = asyncio.create_task(
            self._run(agent, call_id, call_type, params), name=f"parley-{session_id}"
        )
        managed = _Managed(session_id, call_id, call_type, time.monotonic(), task)
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait(
            {task, waiter},
            timeout=max(0.0, deadline - loop.time()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        waiter.cancel()
        session = agent.session
        if waiter not in done or session is None:
            if task.done() and not task.cancelled() and task.exception() is not None:
                error: BaseException = task.exception()  # type: ignore[assignment]
            elif task.done():
                error = RuntimeError("join_call returned without starting a session")
            else:
                error = TimeoutError(
                    f"join_call did not start a session within {self._timeout_text}"
                )
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self._record_failure(session_id, call_id, call_type, error)
            stuck = isinstance(error, TimeoutError)
            failure = SessionStartTimedOut if stuck else SessionStartFailed
            raise failure(f"joining call {call_id!r} failed: {error}") from error
        managed.session = session
        self._sessions[session_id] = managed
        task.add_done_callback(lambda _: self._in_background(self._forget(managed)))
        try:
            await self.registry.register(
                call_id, session_id, call_type=call_type, state=session.state.value
            )
        except StoreUnavailable as exc:
            logger.warning("session %s runs but is not yet in the registry: %s", session_id, exc)
        return session

    @property
    def _timeout_text(self) -> str:
        return f"start_timeout={self.start_timeout} s"

    async def _run(
        self, agent: Agent, call_id: str, call_type: str, params: dict[str, Any]
    ) -> None:
        try:
            await self.join_call(agent, call_type, call_id, **params)
        finally:
            session = agent.session
            if session is not None and not session.closed:
                await session.close()

    async def _record_failure(
        self, session_id: str, call_id: str, call_type: str, error: BaseException
    ) -> None:
        """A failed start stays visible in the registry (state ``failed``) until its TTL ends."""
        self._failed_starts += 1
        logger.error("session %s on call %s failed to start: %s", session_id, call_id, error)
        try:
            await self.registry.record_failure(
                call_id, session_id, call_type=call_type, error=f"{type(error).__name__}: {error}"
            )
        except StoreUnavailable:
            pass

    async def _forget(self, managed: _Managed) -> None:
        if self._sessions.get(managed.session_id) is managed:
            del self._sessions[managed.session_id]
        await self._release(managed.call_id, managed.session_id)

    async def _release(self, call_id: str, session_id: str) -> None:
        try:
            await self.registry.release(call_id, session_id)
        except StoreUnavailable as exc:
            logger.warning(
                "could not release %s in the registry (it will expire): %s", session_id, exc
            )

    async def close_session(self, session_id: str, timeout: float = 10.0) -> bool:
        """Close a session running on this node; False if it is not here."""
        managed = self._sessions.get(session_id)
        if managed is None:
            return False
        managed.closing = True
        if managed.session is not None:
            await managed.session.close()
        done, _ = await asyncio.wait({managed.task}, timeout=timeout)
        if not done:
            managed.task.cancel()
            await asyncio.gather(managed.task, return_exceptions=True)
        await self._forget(managed)
        return True

    async def request_close_session(self, call_id: str, session_id: str) -> bool:
        """Ask the owning node (this one or another) to close a session; False if unknown."""
        managed = self._sessions.get(session_id)
        if managed is not None and managed.call_id == call_id:
            self._in_background(self.close_session(session_id))
            return True
        return await self.registry.request_close(call_id, session_id)

    async def _on_close_requested(self, call_id: str, session_id: str) -> None:
        managed = self._sessions.get(session_id)
        if managed is not None and managed.call_id == call_id:
            await self.close_session(session_id)

    def _in_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def get_session(self, session_id: str) -> AgentSession | None:
        managed = self._sessions.get(session_id)
        return managed.session if managed else None

    async def get_session_info(self, call_id: str, session_id: str) -> SessionRecord | None:
        """A session's record, wherever it runs (this node's fresh state first)."""
        managed = self._sessions.get(session_id)
        if managed is not None and managed.call_id == call_id and managed.session is not None:
            await self._sync(managed)
        return await self.registry.get(call_id, session_id)

    async def list_sessions(self, call_id: str | None = None) -> list[SessionRecord]:
        if call_id is not None:
            validate_call_id(call_id)
        return await self.registry.list_sessions(call_id)

    def stats(self) -> LauncherStats:
        by_state: dict[str, int] = {}
        for managed in self._sessions.values():
            if managed.session is not None:
                state = managed.session.state.value
                by_state[state] = by_state.get(state, 0) + 1
        return LauncherStats(
            running=len(self._sessions),
            starting=self._starting,
            draining=self._draining,
            ready=self.ready,
            failed_starts=self._failed_starts,
            by_state=by_state,
        )

    # --- maintenance ---------------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval)
            try:
                await self.maintain()
            except Exception:
                logger.exception("maintenance pass failed")

    async def maintain(self) -> None:
        """One pass: enforce duration and idle limits, refresh registry records."""
        now = time.monotonic()
        for managed in list(self._sessions.values()):
            session = managed.session
            if session is None or managed.closing:
                continue
            reason = self._limit_reached(managed, now)
            if reason:
                logger.info("closing session %s: %s", managed.session_id, reason)
                managed.closing = True
                self._in_background(self.close_session(managed.session_id))
                continue
            await self._sync(managed)

    def _limit_reached(self, managed: _Managed, now: float) -> str | None:
        session = managed.session
        assert session is not None
        limit = self.max_session_duration_seconds
        if limit is not None and now - managed.started >= limit:
            return f"reached max_session_duration_seconds={limit}"
        connection = session.connection
        if self.agent_idle_timeout is not None and connection is not None:
            if connection.humans():
                managed.alone_since = None
            else:
                managed.alone_since = managed.alone_since or now
                if now - managed.alone_since >= self.agent_idle_timeout:
                    return f"alone on the call for {self.agent_idle_timeout} s"
        return None

    async def _sync(self, managed: _Managed) -> None:
        session = managed.session
        if session is None:
            return
        try:
            await self.registry.update(
                managed.call_id,
                managed.session_id,
                state=session.state.value,
                metrics=session.metrics.to_dict(),
                error=repr(session.error) if session.error else None,
            )
        except (StoreUnavailable, KeyError) as exc:
            logger.debug("registry update for %s deferred: %s", managed.session_id, exc)
