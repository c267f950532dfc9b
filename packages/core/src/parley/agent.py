"""`Agent`: instructions, tools and parts — the persona users write.

Style A: the agent owns its parts and edge (``Agent(edge=..., llm=..., tts=..., stt=...)``),
then ``async with agent.join(call): ...``. Style B: subclass it with ``on_enter``/``on_exit``
and give an `AgentSession` a pipeline.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from parley.chat import ChatContext
from parley.edge import Call, Edge, User
from parley.host import Pipeline
from parley.llm import LLM
from parley.pipeline import CascadingPipeline, RealtimePipeline
from parley.realtime import Realtime
from parley.speech import SpeechHandle
from parley.stt import STT, BatchSTT
from parley.tools import FunctionTool, ToolRegistry, method_tools
from parley.tts import TTS
from parley.turn import TurnDetector
from parley.vad import VAD

if TYPE_CHECKING:
    from parley.session import AgentSession


def _resolve(kind: str, part: Any) -> Any:
    if isinstance(part, str):
        from parley.plugins import resolve

        return resolve(kind, part)
    return part


def _same_function(tool: FunctionTool, other: FunctionTool | None) -> bool:
    """Whether both tools run the same function on the same instance (or none)."""
    if other is None:
        return False

    def key(fn: Any) -> tuple[Any, Any]:
        return getattr(fn, "__func__", fn), getattr(fn, "__self__", None)

    (fn, owner), (other_fn, other_owner) = key(tool.fn), key(other.fn)
    return fn is other_fn and owner is other_owner


class Agent:
    """An agent persona and, optionally, its parts.

    ``llm`` may be an LLM or a Realtime model (then it runs a `RealtimePipeline`). Spec strings
    are resolved here, so ``agent.llm.register_function`` works right after construction.

    Tools: the methods of a subclass decorated with ``@function_tool`` (bound to this agent)
    and then ``tools=[...]``, in ``agent.tools``; two tools with one name are a ValueError.
    """

    def __init__(
        self,
        instructions: str = "",
        *,
        tools: Sequence[Any] = (),
        llm: LLM | Realtime | str | None = None,
        stt: STT | BatchSTT | str | None = None,
        tts: TTS | str | None = None,
        vad: VAD | str | None = None,
        turn_detector: TurnDetector | str | None = None,
        edge: Edge | str | None = None,
        agent_user: User | None = None,
        processors: Sequence[Any] = (),
        mcp_servers: Sequence[Any] = (),
        pipeline_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.chat_ctx = ChatContext()
        self._instructions = ""
        self.instructions = instructions
        self.tools = ToolRegistry()
        self._register_tools(tools)
        if isinstance(llm, str):
            llm = _resolve(
                "realtime" if llm.startswith("realtime:") else "llm", llm.removeprefix("realtime:")
            )
        self.llm: Any = llm
        self.stt = stt
        self.tts = tts
        self.vad = vad
        self.turn_detector = turn_detector
        self.edge: Any = edge
        self.agent_user = agent_user or User()
        self.processors = list(processors)
        self.mcp_servers = list(mcp_servers)
        # Passed to the pipeline built from these parts: turn=, interruption=, tools=, ...
        self.pipeline_options = dict(pipeline_options or {})
        self._mcp_tools: list[FunctionTool] = []
        self.session: AgentSession | None = None
        # Set by a launcher so its registry id is the session's.
        self.session_id: str | None = None
        self.session_started = asyncio.Event()  # set by the session once `on_enter` is due

    @classmethod
    def local(
        cls, instructions: str = "You are a helpful voice assistant.", **kwargs: Any
    ) -> Agent:
        """An agent on the offline parts (preset ``"local"``): no key, no account.

        ``PARLEY_LLM`` (a spec string such as ``"openai/gpt-4o-mini"``) swaps in another LLM,
        so the same demo can use a cloud model when a key is available.
        """
        kwargs.setdefault("stt", "local")
        kwargs.setdefault("tts", "local")
        kwargs.setdefault("vad", "local")
        kwargs.setdefault("llm", os.environ.get("PARLEY_LLM") or "local")
        return cls(instructions, **kwargs)

    def _register_tools(self, tools: Sequence[Any]) -> None:
        declared = method_tools(self)
        self.tools.extend(declared)  # two methods declaring one tool name fail here
        methods = {tool.name: tool for tool in declared}
        for item in tools:
            if isinstance(item, FunctionTool) and _same_function(item, methods.get(item.name)):
                continue  # ``tools=[self.get_weather]``: that method is registered already
            name = item.name if isinstance(item, FunctionTool) else getattr(item, "__name__", None)
            if name in methods:
                raise ValueError(
                    f"two tools are named {name!r}: the method "
                    f"{type(self).__name__}.{name} (@function_tool) and one in tools=[...]; "
                    "rename one, e.g. @function_tool(name=...)"
                )
            self.tools.register(item)

    # --- persona -------------------------------------------------------------------------------

    @property
    def instructions(self) -> str:
        return self._instructions

    @instructions.setter
    def instructions(self, value: str) -> None:
        self._instructions = value
        if value:
            self.chat_ctx.set_instructions(value)

    async def on_enter(self) -> None:
        """The session started; greet the user here (``await self.session.say(...)``)."""

    async def on_exit(self) -> None:
        """The session is closing (called exactly once)."""

    def all_tools(self) -> list[FunctionTool]:
        tools = list(self.tools)
        llm = self.session.llm if self.session is not None else None
        for source in (llm, self.llm if self.llm is not llm else None):
            if isinstance(source, LLM):
                tools.extend(source.tools)
        tools.extend(self._mcp_tools)
        return tools

    def default_pipeline(self) -> Pipeline:
        if isinstance(self.llm, Realtime):
            return RealtimePipeline(self.llm, **self.pipeline_options)
        return CascadingPipeline(
            stt=self.stt,
            llm=self.llm,
            tts=self.tts,
            vad=self.vad,
            turn_detector=self.turn_detector,
            **self.pipeline_options,
        )

    def attach(self, session: AgentSession) -> None:
        """Bind this agent to ``session`` (`AgentSession` calls this; one session at a time)."""
        if self.session is not None and not self.session.closed:
            raise RuntimeError("this agent already runs in a session; create one agent per session")
        self.session = session

    async def load_mcp_tools(self) -> None:
        """List the tools of ``mcp_servers`` (called when the session starts)."""
        tools: list[FunctionTool] = []
        for server in self.mcp_servers:
            await server.connect()
            tools.extend(await server.list_tools())
        self._mcp_tools = tools

    # --- style A -------------------------------------------------------------------------------

    def _edge(self) -> Edge:
        if self.edge is None:
            raise RuntimeError("this agent has no edge: pass edge=... (e.g. edge='webrtc')")
        if isinstance(self.edge, str):
            self.edge = _resolve("edge", self.edge)
        edge: Edge = self.edge
        return edge

    async def create_call(self, call_type: str, call_id: str, **options: Any) -> Call:
        return await self._edge().create_call(call_type, call_id, **options)

    @asynccontextmanager
    async def join(
        self, call: Call, *, wake_up: float | None = None
    ) -> AsyncIterator[AgentSession]:
        """Join ``call`` and run a session on it; leaving the block closes the session."""
        from parley.session import AgentSession

        session = AgentSession(self, wake_up=wake_up)
        connection = await call.edge.join(call, self.agent_user)
        try:
            await session.start(connection)
            yield session
        finally:
            await session.close()

    def _running_session(self) -> AgentSession:
        if self.session is None or self.session.closed:
            raise RuntimeError("the agent is not in a call; use `async with agent.join(call):`")
        return self.session

    def say(self, text: str, interruptible: bool = True) -> SpeechHandle:
        """Speak ``text``; ``await`` the result to wait until it was played."""
        return self._running_session().say(text, interruptible=interruptible)

    def simple_response(self, text: str) -> SpeechHandle:
        """Answer ``text`` with the LLM as if the user had said it; awaitable until played."""
        return self._running_session().generate_reply(text)

    async def finish(self) -> None:
        """Return when the call ends or the session closes."""
        await self._running_session().wait()
