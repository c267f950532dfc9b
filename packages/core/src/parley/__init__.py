"""Parley: real-time voice and video AI agents.

The public API is re-exported here and loaded on first use, so ``import parley`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # agents and sessions
    "Agent": "parley.agent",
    "AgentSession": "parley.session",
    "SessionClosed": "parley.session",
    "SpeechHandle": "parley.speech",
    "ConversationFlow": "parley.flow",
    "Pipeline": "parley.host",
    "RunnerHost": "parley.host",
    "CascadingPipeline": "parley.pipeline",
    "RealtimePipeline": "parley.pipeline",
    "RealTimePipeline": "parley.pipeline",
    "TurnOptions": "parley.policy",
    "InterruptionOptions": "parley.policy",
    "ToolOptions": "parley.policy",
    "ProviderTimeouts": "parley.policy",
    "WorkerJob": "parley.job",
    "JobContext": "parley.job",
    "RoomOptions": "parley.job",
    "AgentLauncher": "parley.launcher",
    "VideoProcessor": "parley.video",
    "SessionRegistry": "parley.registry",
    # media and history
    "AudioFrame": "parley.frames",
    "VideoFrame": "parley.frames",
    "AudioResampler": "parley.audio",
    "AudioChunker": "parley.audio",
    "read_wav": "parley.wav",
    "write_wav": "parley.wav",
    "ChatContext": "parley.chat",
    "ChatMessage": "parley.chat",
    "ToolCall": "parley.chat",
    # tools
    "function_tool": "parley.tools",
    "FunctionTool": "parley.tools",
    "ToolError": "parley.tools",
    # provider failures
    "ProviderError": "parley.errors",
    "ProviderDisconnected": "parley.errors",
    # contracts
    "STT": "parley.stt",
    "BatchSTT": "parley.stt",
    "STTEvent": "parley.stt",
    "LLM": "parley.llm",
    "LLMChunk": "parley.llm",
    "TTS": "parley.tts",
    "VAD": "parley.vad",
    "TurnDetector": "parley.turn",
    "Realtime": "parley.realtime",
    "Edge": "parley.edge",
    "Call": "parley.edge",
    "Connection": "parley.edge",
    "User": "parley.edge",
    "SessionStore": "parley.store",
    "EventBus": "parley.bus",
    "SessionState": "parley.events",
}

# Provided by other distributions when installed.
_OPTIONAL: dict[str, tuple[str, str]] = {
    "Runner": ("parley_server", "parley-server"),
    "ServeOptions": ("parley_server", "parley-server"),
}

__all__ = sorted([*_EXPORTS, "__version__"])


# Type checkers must not see the module `__getattr__`: they would accept any name through it
# (`from parley import Agnet` typed as Any). They read the explicit imports at the end instead.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        return _load(name)


def _load(name: str) -> Any:
    if name == "__version__":
        value = _installed_version()
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _OPTIONAL:
        module, distribution = _OPTIONAL[name]
        try:
            value = getattr(importlib.import_module(module), name)
        except ImportError as exc:
            raise ImportError(
                f"parley.{name} comes with the server package: pip install {distribution}"
            ) from exc
        globals()[name] = value
        return value
    raise AttributeError(f"module 'parley' has no attribute {name!r}")


def _installed_version() -> str:
    # The version is written once, in packages/core/pyproject.toml; this reads the installed
    # metadata, on first use because importing importlib.metadata costs more than parley itself.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("parley-core")
    except PackageNotFoundError:  # a source tree on sys.path without an install
        return "0+unknown"


def __dir__() -> list[str]:
    return [*__all__, *_OPTIONAL]


# What type checkers see: the real export list, one import per lazily exported name. A name
# added to `_EXPORTS` belongs here too (tests/test_typing_exports.py checks both lists agree).
if TYPE_CHECKING:
    __version__: str

    # parley-server is optional: without it a type checker treats these two as Any, as it
    # does any unresolved import inside an installed package.
    from parley_server.options import ServeOptions as ServeOptions
    from parley_server.runner import Runner as Runner

    from parley.agent import Agent as Agent
    from parley.audio import AudioChunker as AudioChunker
    from parley.audio import AudioResampler as AudioResampler
    from parley.bus import EventBus as EventBus
    from parley.chat import (
        ChatContext as ChatContext,
    )
    from parley.chat import (
        ChatMessage as ChatMessage,
    )
    from parley.chat import (
        ToolCall as ToolCall,
    )
    from parley.edge import Call as Call
    from parley.edge import Connection as Connection
    from parley.edge import Edge as Edge
    from parley.edge import User as User
    from parley.errors import ProviderDisconnected as ProviderDisconnected
    from parley.errors import ProviderError as ProviderError
    from parley.events import SessionState as SessionState
    from parley.flow import ConversationFlow as ConversationFlow
    from parley.frames import AudioFrame as AudioFrame
    from parley.frames import VideoFrame as VideoFrame
    from parley.host import Pipeline as Pipeline
    from parley.host import RunnerHost as RunnerHost
    from parley.job import (
        JobContext as JobContext,
    )
    from parley.job import (
        RoomOptions as RoomOptions,
    )
    from parley.job import (
        WorkerJob as WorkerJob,
    )
    from parley.launcher import AgentLauncher as AgentLauncher
    from parley.llm import LLM as LLM
    from parley.llm import LLMChunk as LLMChunk
    from parley.pipeline import (
        CascadingPipeline as CascadingPipeline,
    )
    from parley.pipeline import (
        RealTimePipeline as RealTimePipeline,
    )
    from parley.pipeline import (
        RealtimePipeline as RealtimePipeline,
    )
    from parley.policy import (
        InterruptionOptions as InterruptionOptions,
    )
    from parley.policy import (
        ProviderTimeouts as ProviderTimeouts,
    )
    from parley.policy import (
        ToolOptions as ToolOptions,
    )
    from parley.policy import (
        TurnOptions as TurnOptions,
    )
    from parley.realtime import Realtime as Realtime
    from parley.registry import SessionRegistry as SessionRegistry
    from parley.session import AgentSession as AgentSession
    from parley.session import SessionClosed as SessionClosed
    from parley.speech import SpeechHandle as SpeechHandle
    from parley.store import SessionStore as SessionStore
    from parley.stt import STT as STT
    from parley.stt import BatchSTT as BatchSTT
    from parley.stt import STTEvent as STTEvent
    from parley.tools import (
        FunctionTool as FunctionTool,
    )
    from parley.tools import (
        ToolError as ToolError,
    )
    from parley.tools import (
        function_tool as function_tool,
    )
    from parley.tts import TTS as TTS
    from parley.turn import TurnDetector as TurnDetector
    from parley.vad import VAD as VAD
    from parley.video import VideoProcessor as VideoProcessor
    from parley.wav import read_wav as read_wav
    from parley.wav import write_wav as write_wav
