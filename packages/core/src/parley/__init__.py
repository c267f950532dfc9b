"""Parley: real-time voice and video AI agents.

The public API is re-exported here and loaded on first use, so ``import parley`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # agents and sessions
    "Agent": "parley.agent",
    "AgentSession": "parley.session",
    "SessionClosed": "parley.session",
    "SpeechHandle": "parley.speech",
    "ConversationFlow": "parley.flow",
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


def __getattr__(name: str) -> Any:
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


def __dir__() -> list[str]:
    return [*__all__, *_OPTIONAL]


if TYPE_CHECKING:
    from parley.agent import Agent
    from parley.audio import AudioChunker, AudioResampler
    from parley.bus import EventBus
    from parley.chat import ChatContext, ChatMessage, ToolCall
    from parley.edge import Call, Connection, Edge, User
    from parley.events import SessionState
    from parley.flow import ConversationFlow
    from parley.frames import AudioFrame, VideoFrame
    from parley.job import JobContext, RoomOptions, WorkerJob
    from parley.llm import LLM, LLMChunk
    from parley.pipeline import CascadingPipeline, RealTimePipeline, RealtimePipeline
    from parley.policy import InterruptionOptions, ProviderTimeouts, ToolOptions, TurnOptions
    from parley.realtime import Realtime
    from parley.session import AgentSession, SessionClosed
    from parley.speech import SpeechHandle
    from parley.store import SessionStore
    from parley.stt import STT, BatchSTT, STTEvent
    from parley.tools import FunctionTool, ToolError, function_tool
    from parley.tts import TTS
    from parley.turn import TurnDetector
    from parley.vad import VAD
    from parley.wav import read_wav, write_wav
