"""The Vision Agents example on Stream's video network: the seed example with ``getstream.Edge()``.

    export STREAM_API_KEY=... STREAM_API_SECRET=...   # from dashboard.getstream.io
    python examples/stream_agent.py run          # one agent on one call; opens Stream's demo app
    python examples/stream_agent.py serve        # HTTP API: POST /calls/{call_id}/sessions

A program written for Vision Agents runs like this one once its imports say ``parley``: the
agent joins the call on Stream, and people join it from Stream's demo app or any app built on
Stream's video SDKs. With the offline plugins installed (parley-whisper, parley-piper,
parley-llamacpp, parley-silero) it needs no other key; without them, or with
``PARLEY_EXAMPLE_PARTS=fake``, it runs on the testing kit's fake parts. See docs/getstream.md.
"""

from __future__ import annotations

import os
from typing import Any

from parley import Agent, AgentLauncher, Runner, User
from parley.plugins import getstream, list_parts

GREETING = "Hello! How can I help you today?"

# kind -> the part the zero-key "local" preset stands for
LOCAL_PARTS = {"stt": "whisper", "tts": "piper", "llm": "llamacpp", "vad": "silero"}


def _offered(kind: str, name: str) -> bool:
    return any(part.name == name and part.deps_ok for part in list_parts(kind))


def choose_parts() -> dict[str, Any]:
    """The offline parts when installed, else the testing kit's fakes."""
    wanted = os.environ.get("PARLEY_EXAMPLE_PARTS", "auto")
    if wanted != "fake" and all(_offered(kind, name) for kind, name in LOCAL_PARTS.items()):
        return {"llm": "local", "stt": "local", "tts": "local", "vad": "local"}
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

    return {
        "llm": FakeLLM([GREETING]),  # then it echoes what it heard
        "stt": FakeSTT(script=["What is the weather in Paris?"]),
        "tts": FakeTTS(),
        "vad": FakeVAD(),
    }


async def create_agent(**kwargs: Any) -> Agent:
    agent = Agent(
        edge=getstream.Edge(),
        agent_user=User(name="Assistant", id="agent"),
        instructions="You are a helpful voice assistant.",
        **choose_parts(),
    )

    @agent.llm.register_function(description="Get the current weather for a location")
    async def get_weather(location: str) -> str:
        return f"The weather in {location} is sunny."

    return agent


async def join_call(agent: Agent, call_type: str, call_id: str, **kwargs: Any) -> None:
    call = await agent.create_call(call_type, call_id)
    async with agent.join(call):
        await agent.simple_response(GREETING)
        await agent.finish()


if __name__ == "__main__":
    Runner(AgentLauncher(create_agent=create_agent, join_call=join_call)).cli()
