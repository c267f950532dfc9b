"""`AgentSession`: one agent on one call, from start to close.

The session owns the lifecycle (state, events, wake-up timer, metrics, cleanup) and the
connection's input loops; the pipeline's runner owns the conversation logic.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry.trace import INVALID_SPAN, Span

from parley import logs
from parley.bus import EventBus
from parley.chat import ChatContext
from parley.edge import (
    Connection,
    ConnectionClosed,
    DataReceived,
    ParticipantJoined,
    ParticipantLeft,
)
from parley.events import (
    DataMessage,
    ErrorOccurred,
    SessionEvent,
    SessionState,
    StateChanged,
    Transcript,
    TurnMetricsReady,
    WakeUp,
)
from parley.flow import ConversationFlow
from parley.host import Pipeline, Runner, SessionAgent
from parley.llm import LLM
from parley.metrics import SessionMetrics, TurnMetrics
from parley.speech import SpeechHandle
from parley.tools import FunctionTool
from parley.tracing import end as end_span
from parley.tracing import start_session

logger = logging.getLogger("parley.session")
# Each state's wire text, looked up once: an enum's `.value` costs a descriptor call per use.
_STATE_TEXT = {state: state.value for state in SessionState}

_PART_CLOSE_TIMEOUT = 5.0
# What `AgentSession.start` accepts: ours (connection) and VideoSDK's documented keywords.
_START_OPTIONS = ("connection", "wait_for_participant", "run_until_shutdown")


async def _first_of(*waits: Awaitable[Any]) -> None:
    """Return when the first of ``waits`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SessionClosed(RuntimeError):
    """The session is closed; it cannot speak or start again."""


class AgentSession:
    """Runs ``agent`` with ``pipeline`` over a connection.

    ``wake_up=N`` with an ``on_wake_up`` callback: after N seconds in which neither side has
    spoken, the callback runs (once per silence; user speech or the end of agent speech
    re-arms it).
    """

    def __init__(
        self,
        agent: SessionAgent,
        pipeline: Pipeline | None = None,
        conversation_flow: ConversationFlow | None = None,
        wake_up: float | None = None,
    ) -> None:
        if wake_up is not None and wake_up <= 0:
            raise ValueError(f"wake_up must be a positive number of seconds, got {wake_up}")
        self.id = agent.session_id or f"sess_{uuid.uuid4().hex[:12]}"
        self.agent = agent
        self.pipeline: Pipeline = pipeline if pipeline is not None else agent.default_pipeline()
        self.flow = conversation_flow or ConversationFlow(agent)
        self.flow.session = self
        self.wake_up = wake_up
        self.on_wake_up: Callable[[], Any] | None = None
        self.events = EventBus()
        self.metrics = SessionMetrics()
        self.state = SessionState.STARTING
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.connection: Connection | None = None
        self.llm: LLM | None = None
        # The OpenTelemetry span of the session (`parley.tracing`); no-op until it starts.
        self.span: Span = INVALID_SPAN
        self._runner: Runner | None = None
        self._parts: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._io_tasks: list[asyncio.Task[Any]] = []
        self._closed = asyncio.Event()
        self._closing = False
        self._exit_called = False
        self._last_activity = time.monotonic()
        self._wake_armed = True
        self._wake_task: asyncio.Task[None] | None = None
        self._job: Any = None
        self._outbox: asyncio.Queue[dict[str, Any]] | None = None
        agent.attach(self)

    # --- properties ----------------------------------------------------------------------------

    @property
    def chat_ctx(self) -> ChatContext:
        return self.agent.chat_ctx

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def connection_or_raise(self) -> Connection:
        if self.connection is None:
            raise RuntimeError("the session has no connection yet; call start() first")
        return self.connection

    @property
    def instructions(self) -> str:
        return self.agent.instructions

    def tools(self) -> list[FunctionTool]:
        return self.agent.all_tools()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(
        self,
        connection: Connection | None = None,
        *,
        wait_for_participant: bool = False,
        run_until_shutdown: bool = False,
        **unknown: Any,
    ) -> None:
        """Build the parts, start the pipeline on the connection, then call ``on_enter``.

        Without ``connection`` the session uses the current `JobContext`'s room.
        ``wait_for_participant=True`` warms the parts up, then waits for someone to join
        before starting (so the greeting is heard). ``run_until_shutdown=True`` connects the
        job's room if needed, starts, and returns only when the session closes or the job is
        told to stop; then it closes the session and shuts the job context down.
        """
        if unknown:
            raise TypeError(
                f"AgentSession.start() got unknown keyword arguments: "
                f"{', '.join(sorted(unknown))}; it accepts: {', '.join(_START_OPTIONS)}"
            )
        if self._closing:
            raise SessionClosed("this session was closed; create a new AgentSession")
        if self.connection is not None:
            raise RuntimeError("session already started")
        job: Any = None
        if connection is None:
            from parley.job import current_job_context

            job = current_job_context()
            if job is not None and job.connection is None and run_until_shutdown:
                await job.connect()  # VideoSDK's run_until_shutdown connects the room itself
            if job is None or job.connection is None:
                raise RuntimeError(
                    "no connection: call `await ctx.connect()` on the JobContext first "
                    "(or start with run_until_shutdown=True), or use `async with agent.join(call)`"
                )
            connection = job.connection
            job.sessions.append(self)
            self._job = job
        if not run_until_shutdown:
            if not await self._start(connection, wait_for_participant, job):
                raise SessionClosed("the call ended before anyone joined")
            return
        try:
            if await self._start(connection, wait_for_participant, job):
                await self._wait_for_shutdown(job)
        finally:
            # Shielded: a job cancels its entrypoint when the room ends, and ``on_exit`` must
            # not be cut short by that.
            await asyncio.shield(self.close())
            if job is not None:
                await job.shutdown()

    async def _start(self, connection: Connection, wait_for_participant: bool, job: Any) -> bool:
        """Start; False if the call ended (or the job stopped) before anyone joined, and then
        the session is closed."""
        self.connection = connection
        # Before any task of the session exists: they all inherit the ids (`parley.logs`).
        logs.bind(self.id, connection.call.call_id)
        self.span = start_session(
            self.id,
            connection.call.call_id,
            connection.agent_user.name or type(self.agent).__name__,
        )
        try:
            joined = await self._start_pipeline(connection, wait_for_participant, job)
        except asyncio.CancelledError:
            await asyncio.shield(self.close())  # stopped (a signal, a timeout), not failed
            raise
        except BaseException as exc:
            self.fail(exc)
            await self.close()
            raise
        if not joined:
            await self.close()
            return False
        self.started_at = time.time()
        self._io_tasks = [asyncio.create_task(self._audio_loop(connection), name="parley-audio-in")]
        if self._video_consumers():
            for processor in self.agent.processors:
                await processor.start(self)
            self._io_tasks.append(
                asyncio.create_task(self._video_loop(connection), name="parley-video-in")
            )
        connection.events.subscribe(self._on_connection_event)
        if connection.call.edge.capabilities.data:
            self._outbox = asyncio.Queue(maxsize=256)
            self._io_tasks.append(
                asyncio.create_task(
                    self._send_loop(connection, self._outbox), name="parley-data-out"
                )
            )
            self._mirror_to_participants()
        from parley.plugins import call_hook

        call_hook("session_started", session=self)
        self.set_state(SessionState.LISTENING)
        self.touch_activity()
        if self.wake_up is not None:
            self._wake_task = asyncio.create_task(
                self._wake_loop(self.wake_up), name="parley-wake-up"
            )
        if self.llm is not None:
            # The first turn waits for this only if it comes before priming is done.
            self.spawn(self.llm.prepare(self.chat_ctx.copy(), self.tools()), "llm")
        self.agent.session_started.set()
        await self.agent.on_enter()
        return True

    async def _start_pipeline(
        self, connection: Connection, wait_for_participant: bool, job: Any
    ) -> bool:
        """Build, warm up and start the runner, waiting for a participant before the start
        if asked. False if nobody came (the call ended or ``job`` was told to stop)."""
        runner = self.pipeline.create_runner(self, connection)
        self._parts = runner.parts
        self.llm = runner.llm
        try:
            await asyncio.gather(
                *(part.warm_up() for part in self._parts if hasattr(part, "warm_up"))
            )
            if self.agent.mcp_servers:
                await self.agent.load_mcp_tools()
            # After warm-up: the models load while nobody is there yet.
            joined = not wait_for_participant or await self._wait_for_participant(connection, job)
            if not joined:
                await runner.aclose()
                return False
        except BaseException:
            await runner.aclose()
            raise
        self._runner = runner
        await runner.start()
        return True

    async def _wait_for_participant(self, connection: Connection, job: Any) -> bool:
        """Wait for a person in the call: False if the call ends, or the job is told to stop,
        first."""
        arrived = asyncio.Event()

        def watch(event: object) -> None:
            if isinstance(event, ParticipantJoined) and not event.participant.is_agent:
                arrived.set()

        connection.events.subscribe(watch)
        try:
            if connection.humans():
                return True
            logger.info("session %s: waiting for a participant to join", self.id)
            waits = [arrived.wait(), connection.wait_closed()]
            if job is not None:
                waits.append(job.wait_for_shutdown())
            await _first_of(*waits)
            return arrived.is_set()
        finally:
            connection.events.unsubscribe(watch)

    async def _wait_for_shutdown(self, job: Any) -> None:
        """Until the session closes or, in a job, the job is told to stop."""
        if job is None:
            await self.wait()
        else:
            await _first_of(self.wait(), job.wait_for_shutdown())

    async def _audio_loop(self, connection: Connection) -> None:
        runner = self._runner
        assert runner is not None
        try:
            async for participant, frame in connection.audio_input():
                await runner.push_audio(participant, frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.report_error("edge", exc, False)
            self.fail(exc)
            self.close_soon()

    def _video_consumers(self) -> bool:
        runner = self._runner
        return bool(self.agent.processors) or (runner is not None and runner.wants_video)

    async def _video_loop(self, connection: Connection) -> None:
        """Frames to every processor (and a video-capable realtime model), one at a time:
        the Edge drops stale frames while we are busy, so there is never a backlog."""
        runner = self._runner
        processors = list(self.agent.processors)
        async for participant, frame in connection.video_input():
            if runner is not None and runner.wants_video:
                try:
                    await runner.push_video(participant, frame)
                except Exception as exc:
                    self.report_error("realtime", exc, True)
            for processor in processors:
                try:
                    await processor.process(frame, participant)
                except Exception as exc:
                    self.report_error("video", exc, True)

    def _on_connection_event(self, event: object) -> None:
        if isinstance(event, DataReceived):
            message = event.message
            if message.get("type") == "text" and isinstance(message.get("text"), str):
                if self._runner is not None and not self._closing:
                    self._runner.user_text(message["text"])
            else:
                self.emit(DataMessage(event.participant.id, message))
        elif isinstance(event, ConnectionClosed):
            if not self._closing:
                self.close_soon()
        elif isinstance(event, ParticipantJoined | ParticipantLeft):
            self.touch_activity()
        elif isinstance(event, SessionEvent):  # an edge's own events (a phone's DTMF digits)
            self.emit(event)

    async def wait(self) -> None:
        """Return when the session has closed."""
        await self._closed.wait()

    async def leave(self) -> None:
        """Leave the call but keep the session's parts and history (no ``on_exit``)."""
        await self._stop_io()
        if self.connection is not None:
            await self.connection.leave()

    async def close(self) -> None:
        """Stop everything, call ``on_exit`` once, release every part. Idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        failed = self.state is SessionState.FAILED
        self.set_state(SessionState.CLOSING)
        try:
            if self._wake_task is not None:
                self._wake_task.cancel()
                await asyncio.gather(self._wake_task, return_exceptions=True)
            if not self._exit_called:
                self._exit_called = True
                try:
                    await self.agent.on_exit()
                except Exception as exc:
                    self.report_error("agent", exc, False)
            await self._stop_io()
            if self.connection is not None:
                try:
                    await self.connection.leave()
                except Exception as exc:
                    self.report_error("edge", exc, False)
            await self._close_parts()
            for processor in self.agent.processors:
                try:
                    await processor.aclose()
                except Exception as exc:
                    self.report_error("video", exc, False)
            for server in self.agent.mcp_servers:
                try:
                    await server.aclose()
                except Exception as exc:
                    self.report_error("mcp", exc, False)
            pending = [t for t in self._tasks if t is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            from parley.plugins import call_hook

            call_hook("session_ended", session=self)
        finally:
            self.set_state(SessionState.FAILED if failed else SessionState.CLOSED)
            end_span(self.span, self.error)
            await self.events.aclose()
            self._closed.set()
            if self._job is not None:
                self._job.end()  # the job's room is over when its session is

    async def _stop_io(self) -> None:
        for task in self._io_tasks:
            task.cancel()
        await asyncio.gather(*self._io_tasks, return_exceptions=True)
        self._io_tasks = []
        if self.connection is not None:
            self.connection.events.unsubscribe(self._on_connection_event)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.aclose()

    async def _close_parts(self) -> None:
        async def close(part: Any) -> None:
            try:
                await asyncio.wait_for(part.aclose(), _PART_CLOSE_TIMEOUT)
            except TimeoutError:
                logger.warning("closing %r took over %g s; left behind", part, _PART_CLOSE_TIMEOUT)
            except Exception as exc:
                logger.warning("closing %r failed: %r", part, exc)

        await asyncio.gather(*(close(p) for p in self._parts if hasattr(p, "aclose")))

    # --- speaking ------------------------------------------------------------------------------

    def say(
        self, text: str, interruptible: bool = True, add_to_history: bool = True
    ) -> SpeechHandle:
        """Speak ``text`` as is. ``await`` the handle to wait until it has been played."""
        runner = self._require_runner()
        handle = SpeechHandle(interruptible=interruptible, add_to_history=add_to_history)
        runner.say(handle, text)
        return handle

    def generate_reply(
        self, text: str | None = None, *, instructions: str | None = None
    ) -> SpeechHandle:
        """Let the LLM answer now: ``text`` joins the history as a user message;
        ``instructions`` steer this one reply only."""
        runner = self._require_runner()
        handle = SpeechHandle()
        runner.generate_reply(handle, text, instructions)
        return handle

    def interrupt(self) -> None:
        """Stop what the agent is saying now."""
        if self._runner is not None:
            self._runner.interrupt()

    def _require_runner(self) -> Runner:
        if self._runner is None:
            if self._closing:
                raise SessionClosed("the session is closed")
            raise RuntimeError("the session has not started; call `await session.start()` first")
        return self._runner

    # --- wake-up -------------------------------------------------------------------------------

    async def _wake_loop(self, silence: float) -> None:
        while True:
            delay = self._last_activity + silence - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            runner = self._runner
            someone_speaks = runner is not None and (runner.busy or runner.user_speaking)
            if someone_speaks or not self._wake_armed:
                # Never while someone speaks; count the silence again from now.
                self._last_activity = time.monotonic()
                continue
            self._wake_armed = False
            self._last_activity = time.monotonic()
            self.emit(WakeUp(silence))
            callback = self.on_wake_up
            if callback is not None:
                try:
                    result = callback()
                    if inspect.isawaitable(result):
                        self.spawn(result, "wake_up")
                except Exception as exc:
                    self.report_error("wake_up", exc, True)

    # --- host API (`parley.host.RunnerHost`): what the pipeline's runner calls ----------------

    def touch_activity(self) -> None:
        """Someone spoke: restart the wake-up silence count."""
        self._last_activity = time.monotonic()
        self._wake_armed = True

    def set_state(self, state: SessionState) -> None:
        if state is self.state:
            return
        if self.state in (SessionState.CLOSED, SessionState.FAILED) or (
            self._closing
            and state not in (SessionState.CLOSING, SessionState.CLOSED, SessionState.FAILED)
        ):
            return
        old, self.state = self.state, state
        self.emit(StateChanged(old, state))

    def emit(self, event: SessionEvent) -> None:
        self.events.emit(event)

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        self.metrics.errors += 1
        logger.warning("session %s: %s error: %s", self.id, source, error, exc_info=error)
        self.emit(ErrorOccurred(source, error, recoverable))

    def fail(self, error: BaseException) -> None:
        """A fatal error: the session ends in the FAILED state."""
        self.error = error
        if not self._closing:
            self.set_state(SessionState.FAILED)

    def close_soon(self) -> None:
        """Close in the background (from a callback that cannot await `close`)."""
        self.spawn(self.close(), "close")

    def turn_completed(self, turn: TurnMetrics) -> None:
        self.metrics.add_turn(turn)
        self.emit(TurnMetricsReady(turn))
        from parley.plugins import call_hook

        call_hook("turn_completed", session=self, metrics=turn)

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.report_error(what, exc, True)

        task = asyncio.create_task(guarded(), name=f"parley-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mirror_to_participants(self) -> None:
        """Mirror transcripts, state and turn metrics to the participants' data channel, each
        kind through its own handler (the rest of the events cost nothing here), all through
        one sender task rather than a task per event."""
        events = self.events
        events.subscribe(self._send_transcript, Transcript)
        events.subscribe(self._send_state, StateChanged)
        events.subscribe(self._send_turn_metrics, TurnMetricsReady)

    def _send_transcript(self, event: Transcript) -> None:
        self._to_participants(
            {"type": "transcript", "role": event.role, "text": event.text, "final": event.final}
        )

    def _send_state(self, event: StateChanged) -> None:
        self._to_participants({"type": "state", "state": _STATE_TEXT[event.new]})

    def _send_turn_metrics(self, event: TurnMetricsReady) -> None:
        self._to_participants({"type": "turn_metrics", **event.metrics.to_dict()})

    def _to_participants(self, message: dict[str, Any]) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        try:
            outbox.put_nowait(message)
        except asyncio.QueueFull:
            logger.debug("data channel backlog full; dropping a %s message", message["type"])

    @staticmethod
    async def _send_loop(connection: Connection, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            message = await outbox.get()
            # One loop pass later: a reply's first audio, woken in the same pass, goes first.
            await asyncio.sleep(0)
            try:
                await connection.send_data(message)
            except Exception as exc:
                logger.debug("could not send %s to participants: %s", message["type"], exc)

    def info(self) -> dict[str, Any]:
        """A JSON-able snapshot for registries and HTTP APIs."""
        return {
            "session_id": self.id,
            "state": self.state.value,
            "started_at": self.started_at,
            "metrics": self.metrics.to_dict(),
            "error": repr(self.error) if self.error else None,
        }
