"""Parley's testing kit: fake parts and an in-memory edge for testing agents without a network.

```python
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge, Reply, tool_call

edge = InMemoryEdge()                       # the test plays the other participants
stt = FakeSTT(script=["what's the weather in Paris"])   # transcripts for detected speech
llm = FakeLLM([Reply(tool_calls=[tool_call("get_weather", location="Paris")]), "Sunny."])
tts = FakeTTS()                             # a tone as long as the text
...                                         # the agent joins call "demo" through `edge`
conn = await edge.wait_for_connection("demo")
await conn.push_speech(1.0)                 # the user speaks, then pauses
await conn.push_silence(0.5)
await conn.audio_output.wait_for_audio()    # the agent answers
assert llm.calls[-1].last_user_text == "what's the weather in Paris"
```

Names load on first use, so the plugin entry module (`parley.testing.plugin`) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parley.testing.edge import DEFAULT_USER, InMemoryConnection, InMemoryEdge, SentData
    from parley.testing.llm import FakeLLM, LLMCall, Reply, tokenize, tool_call
    from parley.testing.output import Flush, InMemoryAudioOutput, WrittenFrame
    from parley.testing.realtime import FakeRealtime, FakeRealtimeSession
    from parley.testing.signals import silence_frames, tone, tone_frames
    from parley.testing.stt import EmittedEvent, FakeBatchSTT, FakeSTT, FakeSTTStream
    from parley.testing.tasks import no_leaked_tasks
    from parley.testing.tts import FakeTTS, TTSCall
    from parley.testing.vad import FakeVAD, FakeVADStream
    from parley.testing.waiting import until

_WHERE = {
    "DEFAULT_USER": "edge",
    "InMemoryConnection": "edge",
    "InMemoryEdge": "edge",
    "SentData": "edge",
    "FakeLLM": "llm",
    "LLMCall": "llm",
    "Reply": "llm",
    "tokenize": "llm",
    "tool_call": "llm",
    "Flush": "output",
    "InMemoryAudioOutput": "output",
    "WrittenFrame": "output",
    "FakeRealtime": "realtime",
    "FakeRealtimeSession": "realtime",
    "silence_frames": "signals",
    "tone": "signals",
    "tone_frames": "signals",
    "EmittedEvent": "stt",
    "FakeBatchSTT": "stt",
    "FakeSTT": "stt",
    "FakeSTTStream": "stt",
    "FakeTTS": "tts",
    "TTSCall": "tts",
    "no_leaked_tasks": "tasks",
    "FakeVAD": "vad",
    "FakeVADStream": "vad",
    "until": "waiting",
}

__all__ = [
    "DEFAULT_USER",
    "EmittedEvent",
    "FakeBatchSTT",
    "FakeLLM",
    "FakeRealtime",
    "FakeRealtimeSession",
    "FakeSTT",
    "FakeSTTStream",
    "FakeTTS",
    "FakeVAD",
    "FakeVADStream",
    "Flush",
    "InMemoryAudioOutput",
    "InMemoryConnection",
    "InMemoryEdge",
    "LLMCall",
    "Reply",
    "SentData",
    "TTSCall",
    "WrittenFrame",
    "no_leaked_tasks",
    "silence_frames",
    "tokenize",
    "tone",
    "tone_frames",
    "tool_call",
    "until",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'parley.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"parley.testing.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
