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
        description="Scripted transcripts from audio energy, or events injected by a test "
        "(turn events with turn_detection=true)",
    )
    register(
        "llm",
        "fake",
        "parley.testing.llm:FakeLLM",
        description="Scripted replies and tool calls, streamed word by word",
    )
    register(
        "realtime",
        "fake",
        "parley.testing.realtime:FakeRealtime",
        description="Hears speech by energy, answers with scripted speech and tool calls",
    )
    register(
        "tts",
        "fake",
        "parley.testing.tts:FakeTTS",
        description="A deterministic tone whose length follows the text",
    )
    register(
        "vad",
        "fake",
        "parley.testing.vad:FakeVAD",
        description="Energy VAD: loud audio is speech",
    )
    register(
        "edge",
        "memory",
        "parley.testing.edge:InMemoryEdge",
        description="Calls inside the process, driven by a test",
    )
