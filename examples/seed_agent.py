"""The seed example (style A): the agent owns its parts, a launcher runs one per call.

    python examples/seed_agent.py run          # console mode: one agent on one call
    python examples/seed_agent.py serve        # HTTP API: POST /calls/{call_id}/sessions

With the offline plugins and the local WebRTC edge installed (parley-whisper, parley-piper,
parley-llamacpp, parley-silero, parley-webrtc) it talks in the browser with no API key.
Without them, or with ``PARLEY_EXAMPLE_PARTS=fake``, it runs on the testing kit's fake parts
over the in-memory edge, so the server side can be tried anywhere.
"""

from __future__ import annotations

import os
from typing import Any

from parley import Agent, AgentLauncher, Runner, User
from parley.plugins import list_parts

# kind -> the part the zero-key "local" preset stands for, plus the local browser edge
LOCAL_PARTS = {
    "stt": "whisper",
    "tts": "piper",
    "llm": "llamacpp",
    "vad": "silero",
    "edge": "webrtc",
}


def _offered(kind: str, name: str) -> bool:
    return any(part.name == name and part.deps_ok for part in list_parts(kind))


def choose_parts() -> dict[str, Any]:
    """Spec strings for the offline parts when installed, else the testing kit's fakes."""
    wanted = os.environ.get("PARLEY_EXAMPLE_PARTS", "auto")
    if wanted != "fake" and all(_offered(kind, name) for kind, name in LOCAL_PARTS.items()):
        return {"edge": "webrtc", "llm": "local", "stt": "local", "tts": "local", "vad": "local"}
    from parley.testing import FakeLLM

    return {
        "edge": "memory",
        "llm": FakeLLM(["Hello! How can I help you today?"]),
        "stt": "fake",
        "tts": "fake",
        "vad": "fake",
    }


async def create_agent(**kwargs: Any) -> Agent:
    agent = Agent(
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
        await agent.simple_response("Hello! How can I help you today?")
        await agent.finish()


if __name__ == "__main__":
    Runner(AgentLauncher(create_agent=create_agent, join_call=join_call)).cli()
