"""The seam between a session and its pipeline's runner.

A runner (the cascading or the realtime engine, or a new pipeline kind) receives a `RunnerHost`
and talks to the session only through it; `AgentSession` implements it, and tests drive a
runner with a fake host. A pipeline builds its runner (`Pipeline.create_runner`); the session
feeds the runner media and text through the `Runner` protocol. `SessionAgent` is what the
session reads of its agent, so neither module imports the other's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Protocol

from parley.chat import ChatContext
from parley.edge import Connection, Participant
from parley.events import SessionEvent, SessionState
from parley.frames import AudioFrame, VideoFrame
from parley.llm import LLM, LLMChunk
from parley.metrics import SessionMetrics, TurnMetrics
from parley.speech import SpeechHandle
from parley.tools import FunctionTool


class SessionAgent(Protocol):
    """What a session needs from its agent (`parley.Agent` implements it)."""

    session_id: str | None
    session_started: asyncio.Event
    chat_ctx: ChatContext
    processors: list[Any]
    mcp_servers: list[Any]

    @property
    def instructions(self) -> str: ...
    def attach(self, session: Any) -> None: ...
    def default_pipeline(self) -> Pipeline: ...
    def all_tools(self) -> list[FunctionTool]: ...
    async def load_mcp_tools(self) -> None: ...
    async def on_enter(self) -> None: ...
    async def on_exit(self) -> None: ...


class TurnFlow(Protocol):
    """The override points a runner calls around a turn (`ConversationFlow` implements it)."""

    async def on_turn_start(self, text: str) -> None: ...
    async def on_turn_end(self) -> None: ...
    def process_with_llm(
        self, ctx: ChatContext, tools: Sequence[FunctionTool], **options: Any
    ) -> AsyncIterator[LLMChunk]: ...


class RunnerHost(Protocol):
    """What a runner may do to its session."""

    @property
    def chat_ctx(self) -> ChatContext: ...
    @property
    def metrics(self) -> SessionMetrics: ...
    @property
    def state(self) -> SessionState: ...
    @property
    def flow(self) -> TurnFlow: ...
    @property
    def instructions(self) -> str: ...
    @property
    def llm(self) -> LLM | None: ...
    def tools(self) -> list[FunctionTool]: ...
    def emit(self, event: SessionEvent) -> None: ...
    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None: ...
    def fail(self, error: BaseException) -> None:
        """A fatal error: the session ends in the FAILED state."""

    def close_soon(self) -> None:
        """Close the session in the background (after `fail`)."""

    def set_state(self, state: SessionState) -> None: ...
    def touch_activity(self) -> None:
        """Someone spoke: restart the wake-up silence count."""

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        """Run ``awaitable`` as a session task; its errors are reported under ``what``."""

    def turn_completed(self, turn: TurnMetrics) -> None: ...


class Runner(Protocol):
    """A pipeline's engine on one connection, as the session drives it."""

    @property
    def parts(self) -> list[Any]:
        """What the session warms up before `start` and closes at the end."""

    @property
    def llm(self) -> LLM | None:
        """What `ConversationFlow.process_with_llm` streams by default."""

    @property
    def wants_video(self) -> bool: ...

    async def start(self) -> None: ...
    async def push_audio(self, participant: Participant, frame: AudioFrame) -> None: ...
    async def push_video(self, participant: Participant, frame: VideoFrame) -> None: ...
    def user_text(self, text: str) -> None: ...
    def say(self, handle: SpeechHandle, text: str) -> None: ...
    def generate_reply(
        self, handle: SpeechHandle, text: str | None, instructions: str | None
    ) -> None: ...
    def interrupt(self) -> None: ...
    async def aclose(self) -> None: ...
    @property
    def busy(self) -> bool: ...
    @property
    def user_speaking(self) -> bool: ...


class Pipeline(Protocol):
    """A pipeline kind: it builds its runner for one session and connection."""

    def create_runner(self, host: RunnerHost, connection: Connection) -> Runner: ...
