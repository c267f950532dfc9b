"""Entry module of the ``testing`` plugin: the fakes, by name, without importing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

PARLEY_API = 1


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "stt",
        "fake",
        "parley.testing.stt:FakeSTT",
        capabilities={
            "streaming": True,
            "interim_results": True,
            "turn_detection": "optional",
            "sample_rate": 16000,
            "languages": ["en"],
        },
        description="Scripted transcripts from audio energy, or events injected by a test",
    )
    register(
        "llm",
        "fake",
        "parley.testing.llm:FakeLLM",
        capabilities={"streaming": True, "tools": True, "vision": False},
        description="Scripted replies and tool calls, streamed word by word",
    )
    register(
        "realtime",
        "fake",
        "parley.testing.realtime:FakeRealtime",
        capabilities={
            "input_sample_rate": 24000,
            "output_sample_rate": 24000,
            "server_vad": True,
            "tools": True,
        },
        description="Hears speech by energy, answers with scripted speech and tool calls",
    )
    register(
        "tts",
        "fake",
        "parley.testing.tts:FakeTTS",
        capabilities={"streaming": True, "sample_rate": 24000, "channels": 1, "languages": ["en"]},
        description="A deterministic tone whose length follows the text",
    )
    register(
        "vad",
        "fake",
        "parley.testing.vad:FakeVAD",
        capabilities={"sample_rate": 16000, "window_duration": 0.02},
        description="Energy VAD: loud audio is speech",
    )
    register(
        "edge",
        "memory",
        "parley.testing.edge:InMemoryEdge",
        capabilities={
            "audio_in": True,
            "audio_out": True,
            "video_in": True,
            "data": True,
            "output_sample_rate": 24000,
        },
        description="Calls inside the process, driven by a test",
    )
