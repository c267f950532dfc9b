"""A voice agent you can phone: Twilio Media Streams into a Parley server.

    export TWILIO_ACCOUNT_SID=AC...  TWILIO_AUTH_TOKEN=...     # from console.twilio.com
    export TWILIO_PUBLIC_URL=https://<your-tunnel>.ngrok.app    # how Twilio reaches this port
    python examples/phone_agent.py serve --port 8000

Then set your Twilio number's "A call comes in" webhook to
``$TWILIO_PUBLIC_URL/twilio/voice`` (HTTP POST) and call it. See docs/telephony.md.

Offline parts (Silero VAD, Whisper, the local LLM, Piper) unless ``PARLEY_LLM`` names a cloud
model. Ask it about the weather somewhere (a tool answers); press a key on the phone and the
agent says which (DTMF digits are session events). ``tests/test_phone_e2e.py`` calls it.
"""

from __future__ import annotations

from typing import Any

from parley import Agent, AgentLauncher, Runner, User, function_tool
from parley.plugins import twilio

INSTRUCTIONS = "You are a friendly assistant on a phone call. Answer in one or two short sentences."
GREETING = "Hello! You are talking to a Parley agent on the phone. Ask me about the weather."


@function_tool(description="Get the current weather for a location")
async def get_weather(location: str) -> str:
    return f"It is sunny and 22 degrees in {location}."


def build_agent(edge: Any = None, **parts: Any) -> Agent:
    """The phone agent; ``parts`` overrides llm/stt/tts/vad (tests pass offline or fake ones)."""
    return Agent.local(
        INSTRUCTIONS,
        edge=edge if edge is not None else twilio.Edge(),
        tools=[get_weather],
        agent_user=User(name="Assistant", id="agent"),
        **parts,
    )


async def create_agent(**kwargs: Any) -> Agent:
    return build_agent()


async def join_call(agent: Agent, call_type: str, call_id: str, **kwargs: Any) -> None:
    call = await agent.create_call(call_type, call_id)
    async with agent.join(call) as session:

        @session.events.on(twilio.DTMFReceived)
        def on_digit(event: twilio.DTMFReceived) -> None:
            session.say(f"You pressed {event.digit}.")

        # Spoken, kept out of the history: small local models answer better without it.
        await session.say(GREETING, add_to_history=False)
        await agent.finish()  # until the caller hangs up (or the session ends: we hang up)


if __name__ == "__main__":
    Runner(AgentLauncher(create_agent=create_agent, join_call=join_call)).cli()
