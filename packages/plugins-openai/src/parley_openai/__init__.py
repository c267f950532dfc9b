"""Parley plugin ``openai``: LLM, STT, TTS and Realtime from OpenAI or an OpenAI-compatible server.

This module stays light: it registers the parts; the ``openai`` SDK and ``websockets`` are
imported when a part is built. ``from parley.plugins import openai; llm = openai.LLM()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar
    from parley.providers import MissingAPIKey

    from parley_openai.llm import OpenAILLM
    from parley_openai.realtime import OpenAIRealtime, OpenAIRealtimeSession
    from parley_openai.realtime_config import OpenAIRealtimeConfig
    from parley_openai.stt import OpenAISTT
    from parley_openai.tts import OpenAITTS

    LLM = OpenAILLM
    STT = OpenAISTT
    TTS = OpenAITTS
    Realtime = OpenAIRealtime

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "LLM": "parley_openai.llm:OpenAILLM",
        "OpenAILLM": "parley_openai.llm:OpenAILLM",
        "STT": "parley_openai.stt:OpenAISTT",
        "OpenAISTT": "parley_openai.stt:OpenAISTT",
        "TTS": "parley_openai.tts:OpenAITTS",
        "OpenAITTS": "parley_openai.tts:OpenAITTS",
        "Realtime": "parley_openai.realtime:OpenAIRealtime",
        "OpenAIRealtime": "parley_openai.realtime:OpenAIRealtime",
        "OpenAIRealtimeSession": "parley_openai.realtime:OpenAIRealtimeSession",
        "OpenAIRealtimeConfig": "parley_openai.realtime_config:OpenAIRealtimeConfig",
        "MissingAPIKey": "parley.providers:MissingAPIKey",
    },
)

__all__ = [
    "LLM",
    "PARLEY_API",
    "STT",
    "TTS",
    "MissingAPIKey",
    "OpenAILLM",
    "OpenAIRealtime",
    "OpenAIRealtimeConfig",
    "OpenAIRealtimeSession",
    "OpenAISTT",
    "OpenAITTS",
    "Realtime",
    "register_parts",
]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "llm",
        "openai",
        "parley_openai.llm:OpenAILLM",
        capabilities={"compatible_servers": True},
        description="OpenAI chat completions, streamed with tools; base_url= for any "
        "OpenAI-compatible server (Ollama, vLLM, llama.cpp, Groq, OpenRouter)",
        requires=("openai",),
    )
    register(
        "stt",
        "openai",
        "parley_openai.stt:OpenAISTT",
        description="OpenAI transcription endpoint, one utterance at a time (core cuts them "
        "with a VAD)",
        requires=("openai",),
    )
    register(
        "tts",
        "openai",
        "parley_openai.tts:OpenAITTS",
        description="OpenAI speech endpoint, 24 kHz PCM streamed as it arrives",
        requires=("openai",),
    )
    register(
        "realtime",
        "openai",
        "parley_openai.realtime:OpenAIRealtime",
        description="OpenAI Realtime API over WebSocket: audio in and out, server VAD or "
        "Parley's, tools, interruption with truncation",
        requires=("websockets",),
    )
