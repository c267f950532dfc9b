"""The job API users know from VideoSDK: `WorkerJob`, `JobContext`, `RoomOptions`.

``WorkerJob(entrypoint, jobctx).start()`` runs ``entrypoint(ctx)`` in this process until the
room ends or the process is told to stop:

- The room ends when its session closes, or (``auto_end_session``) ``session_timeout_seconds``
  after the last person left, or ``no_participant_timeout_seconds`` after the agent joined
  when nobody came (if set). An entrypoint that returns while a session runs does not end it.
- One SIGINT/SIGTERM stops the job: the entrypoint is cancelled (its ``finally`` blocks run),
  then every session on the context closes (``on_exit``), then `JobContext.shutdown` runs
  the shutdown callbacks, leaves the call and stops the room's page. A second signal forces
  the exit within `FORCE_EXIT_AFTER` seconds (the process dies of that signal: status 130
  for SIGINT in a shell).

With the default edge (the local WebRTC edge), `JobContext.connect` also serves the page
people join the room from (through parley-server's ``serve_room`` hook) and prints its URL;
it does not wait for anyone (``session.start(wait_for_participant=True)`` does).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import os
import signal
import sys
import threading
import uuid
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from parley.edge import (
    Call,
    Connection,
    ConnectionClosed,
    Edge,
    ParticipantJoined,
    ParticipantLeft,
    User,
)

logger = logging.getLogger("parley.job")

_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "parley_job", default=None
)

_SHUTDOWN_CALLBACK_TIMEOUT = 15.0
FORCE_EXIT_AFTER = 2.0
"""Seconds between a second SIGINT/SIGTERM and the forced exit (killed by that signal)."""
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def current_job_context() -> JobContext | None:
    return _current.get()


@dataclass(slots=True)
class RoomOptions:
    """Where the agent goes and who may join. Unknown options are an error.

    - ``room_id``: the call id (default: a new ``room-xxxxxxxx``); ``call_type``; ``extra``:
      options for the edge's ``create_call``.
    - ``name``, ``agent_participant_id``: the agent as participants see it.
    - ``edge``: an `Edge` or spec string; by default the installed local WebRTC edge, whose
      page `JobContext.connect` serves (``PARLEY_PORT``, default 8000; 0 picks a free port).
    - ``auth_token``: the token a participant must present to join (the page's URL carries
      it); only for rooms Parley serves.
    - ``playground``: print the room's URL when it is served, and open it in a browser when
      this machine has a display (never under ``CI`` or with ``PARLEY_NO_BROWSER`` set).
    - ``vision``: participants are asked for their camera and the session's video consumers
      (video processors, a video-capable realtime model) get their frames.
    - ``auto_end_session``: end the room ``session_timeout_seconds`` after the last person
      leaves, and ``no_participant_timeout_seconds`` after joining if nobody ever came
      (None, the default: wait for the first person as long as it takes).
    """

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
    no_participant_timeout_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.session_timeout_seconds < 0:
            raise ValueError(
                f"session_timeout_seconds must be >= 0, got {self.session_timeout_seconds}"
            )
        if self.no_participant_timeout_seconds is not None and (
            self.no_participant_timeout_seconds <= 0
        ):
            raise ValueError(
                "no_participant_timeout_seconds must be a positive number of seconds or None, "
                f"got {self.no_participant_timeout_seconds}"
            )
        if self.auth_token is not None and not self.auth_token:
            raise ValueError("auth_token must not be empty; leave it None for an open room")

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
        self.room_url: str | None = None  # the page people join from, when Parley serves it
        self.end_reason: str | None = None
        self.sessions: list[Any] = []  # AgentSessions started on this context's connection
        self._shutdown = asyncio.Event()
        self._callbacks: list[Callable[[], Awaitable[Any]]] = []
        self._participant_joined = asyncio.Event()
        self._token: contextvars.Token[JobContext | None] | None = None
        self._owns_edge = False
        self._host: Any = None  # what serves the room's page (parley-server's RoomServer)
        self._end_timer: asyncio.TimerHandle | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    def _activate(self) -> None:
        if self._token is None:
            self._token = _current.set(self)

    async def connect(self) -> Connection:
        """Create the room on the Edge and join it as the agent. With an edge whose room
        Parley serves (the default), serve its page, print its URL, and return once someone
        has joined (so the greeting is heard)."""
        self._activate()
        if self.connection is not None:
            return self.connection
        options = self.room_options
        edge = options.edge or "webrtc"
        if isinstance(edge, str):
            from parley.plugins import resolve

            edge = resolve("edge", edge)
            self._owns_edge = True
        if not isinstance(edge, Edge):
            raise TypeError(f"RoomOptions.edge must be an Edge or a spec string, got {edge!r}")
        served = _serves_routes(edge)
        if options.auth_token is not None and not served:
            raise ValueError(
                f"RoomOptions.auth_token: {type(edge).__name__} rooms are not served by Parley, "
                "so no token can be checked; pass the edge's own credentials in "
                "RoomOptions.extra, or use the webrtc edge"
            )
        if options.vision and not edge.capabilities.video_in:
            raise ValueError(f"RoomOptions.vision=True: {type(edge).__name__} takes no video input")
        self.edge = edge
        room_id = options.room_id or f"room-{uuid.uuid4().hex[:8]}"
        self.call = await edge.create_call(options.call_type, room_id, **options.extra)
        user = User(name=options.name, id=options.agent_participant_id)
        self.connection = await edge.join(self.call, user)
        self.connection.events.subscribe(self._on_event)
        if self.connection.humans():
            self._participant_joined.set()
        elif options.auto_end_session and options.no_participant_timeout_seconds is not None:
            self._arm_end(options.no_participant_timeout_seconds, "nobody joined")
        if served:
            try:
                await self._serve_room()
            except BaseException:
                await self.shutdown()
                raise
        # No wait for the first person here (VideoSDK's `connect` has none either): the
        # session warms its models meanwhile, and the edge holds the agent's first words
        # until someone listens (`session.start(wait_for_participant=True)` waits explicitly).
        return self.connection

    async def _serve_room(self) -> None:
        from parley.plugins import call_hook

        hosts = call_hook("serve_room", room=self)
        if not hosts:
            raise RuntimeError(
                f"nobody serves the page of this {type(self.edge).__name__} room: install "
                "parley-server (pip install parley-server), which hosts it, or pass "
                "RoomOptions(edge=...) for an edge that needs no page"
            )
        self._host = hosts[0]
        url: str = await self._host.start()
        self.room_url = url
        if self.room_options.playground:
            print(f"Talk to the agent: {url}", flush=True)
            if _can_open_browser():
                await asyncio.to_thread(webbrowser.open, url)
        else:
            logger.info("room %s is served at %s", self.room_id, url)

    @property
    def room_id(self) -> str | None:
        return self.call.call_id if self.call is not None else self.room_options.room_id

    def _on_event(self, event: object) -> None:
        options = self.room_options
        if isinstance(event, ParticipantJoined) and not event.participant.is_agent:
            self._participant_joined.set()
            self._disarm_end()
        elif isinstance(event, ConnectionClosed):
            self.end(f"the call closed ({event.reason})" if event.reason else "the call closed")
        elif (
            isinstance(event, ParticipantLeft)
            and options.auto_end_session
            and self.connection is not None
            and not self.connection.humans()
        ):
            self._arm_end(options.session_timeout_seconds, "the last participant left")

    def _arm_end(self, delay: float, reason: str) -> None:
        self._disarm_end()
        logger.info("room %s: %s; it ends in %g s", self.room_id, reason, delay)
        loop = asyncio.get_running_loop()
        self._end_timer = loop.call_later(delay, self.end, reason)

    def _disarm_end(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None

    async def wait_for_participant(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._participant_joined.wait(), timeout)

    def add_shutdown_callback(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._callbacks.append(callback)

    async def wait_for_shutdown(self) -> None:
        """Return when the room is over (`end` was called)."""
        await self._shutdown.wait()

    @property
    def ended(self) -> bool:
        return self._shutdown.is_set()

    def end(self, reason: str = "ended") -> None:
        """Say the room is over (its session closed, everyone left, or a signal came):
        `wait_for_shutdown` returns; `shutdown` does the cleaning up."""
        if not self._shutdown.is_set():
            self.end_reason = reason
            logger.info("room %s ends: %s", self.room_id, reason)
        self._disarm_end()
        self._shutdown.set()

    def running_sessions(self) -> list[Any]:
        return [session for session in self.sessions if not session.closed]

    async def shutdown(self) -> None:
        """Close the sessions (each runs ``on_exit``), run the shutdown callbacks, leave the
        room and stop its page. Idempotent; concurrent callers wait for the same cleanup."""
        if self._shutdown_task is None:
            self.end(self.end_reason or "shut down")
            self._shutdown_task = asyncio.create_task(self._cleanup(), name="parley-job-shutdown")
        # Shielded: a caller cancelled mid-way must not leave the room half torn down.
        await asyncio.shield(self._shutdown_task)

    async def _cleanup(self) -> None:
        for session in list(self.sessions):
            try:
                await session.close()
            except Exception as exc:
                logger.warning("closing session %s failed: %s", session.id, exc)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                await asyncio.wait_for(callback(), _SHUTDOWN_CALLBACK_TIMEOUT)
            except Exception as exc:
                logger.warning("shutdown callback %r failed: %s", callback, exc)
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                await connection.leave()
            except Exception as exc:
                logger.warning("leaving room %s failed: %s", self.room_id, exc)
        host, self._host = self._host, None
        if host is not None:
            try:
                await host.aclose()
            except Exception as exc:
                logger.warning("stopping the room's page failed: %s", exc)
        if self._owns_edge and self.edge is not None:
            await self.edge.aclose()


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
        self._signals = 0

    def start(self) -> None:
        """Run the job in this process until the room ends or a signal stops it (blocks)."""
        asyncio.run(self.run())

    async def run(self) -> None:
        ctx = self.jobctx() if callable(self.jobctx) else (self.jobctx or JobContext())
        if not isinstance(ctx, JobContext):
            raise TypeError(f"jobctx must give a JobContext, got {type(ctx).__name__}")
        ctx._activate()
        restore = self._install_signal_handlers(ctx)
        entry = asyncio.create_task(self.entrypoint(ctx), name="parley-job-entrypoint")
        ended = asyncio.create_task(ctx.wait_for_shutdown(), name="parley-job-ended")
        try:
            await asyncio.wait({entry, ended}, return_when=asyncio.FIRST_COMPLETED)
            returned = entry.done() and not entry.cancelled() and entry.exception() is None
            if returned and ctx.running_sessions():
                await ended  # "Session runs until manually stopped or meeting ends."
            if not entry.done():
                entry.cancel()  # the room ended: let the entrypoint's finally blocks run
            await asyncio.gather(entry, return_exceptions=True)
        finally:
            ended.cancel()
            try:
                await ctx.shutdown()
            finally:
                restore()
        if not entry.cancelled() and (error := entry.exception()) is not None:
            raise error

    def _install_signal_handlers(self, ctx: JobContext) -> Callable[[], None]:
        """SIGINT/SIGTERM end the room; a second one forces the exit. Python-level handlers
        (not the loop's): the second signal must work even when the loop is stuck."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

        def handler(sig: int, frame: FrameType | None) -> None:
            self._signals += 1
            name = signal.Signals(sig).name
            if self._signals == 1:
                loop.call_soon_threadsafe(ctx.end, f"{name} received")
                return
            logger.warning("%s again: forcing the exit within %g s", name, FORCE_EXIT_AFTER)
            # The default disposition ends the process at once (status 128+N in a shell): a
            # third signal does so now, the timer does so after the grace.
            for other in _SIGNALS:
                signal.signal(other, signal.SIG_DFL)
            _kill_later(FORCE_EXIT_AFTER, sig)

        for sig in _SIGNALS:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)

        return restore


def _kill_later(delay: float, sig: int) -> None:
    """Deliver ``sig`` (now with its default, fatal disposition) to this process in ``delay``
    seconds unless it ended before: a timer thread, so a stuck event loop cannot stop it."""

    def force_exit() -> None:
        logger.error("forced exit: the job did not stop within %g s of the second signal", delay)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        os.kill(os.getpid(), sig)

    timer = threading.Timer(delay, force_exit)
    timer.daemon = True
    timer.start()


def _serves_routes(edge: Edge) -> bool:
    """Whether the edge's plugin declares routes (signaling, a page) someone must serve."""
    from parley.plugins import list_parts

    target = f"{type(edge).__module__}:{type(edge).__qualname__}"
    return any(
        part.target == target and part.capabilities.get("routes") for part in list_parts("edge")
    )


def _can_open_browser() -> bool:
    """A browser may open: a display is present, and not under CI or tests."""
    if os.environ.get("CI") or os.environ.get("PARLEY_NO_BROWSER"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
