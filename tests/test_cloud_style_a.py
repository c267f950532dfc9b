"""The style-A example of DESIGN.md on cloud parts: Deepgram STT, Gemini LLM with a tool and
ElevenLabs TTS, end to end over the in-memory edge, every provider a local fake by base URL.

Deepgram and ElevenLabs are local WebSocket servers speaking their protocols
(`parley_deepgram.testing`, `parley_elevenlabs.testing`); Gemini's REST endpoint is served
by respx and answers like the model would: a function call for a weather question, then an
answer built from the function's result that the request carried back.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import respx
from parley import Agent, User
from parley.events import SessionState, ToolCalled
from parley.plugins import deepgram, elevenlabs, gemini
from parley.testing import InMemoryEdge, until
from parley_deepgram.testing import FakeDeepgram
from parley_elevenlabs.testing import FakeElevenLabs

GEMINI = "http://gemini.fake"
QUESTION = "What is the weather in Oslo?"


def sse(parts: list[dict[str, Any]], usage: tuple[int, int] = (30, 8)) -> bytes:
    event = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": usage[0], "candidatesTokenCount": usage[1]},
    }
    return b"data: " + json.dumps(event).encode() + b"\r\n\r\n"


class FakeGemini:
    """Answers streamGenerateContent the way Gemini does with one function declared."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["x-goog-api-key"] == "gemini-key"
        body = json.loads(request.content)
        self.bodies.append(body)
        last = body["contents"][-1]["parts"]
        results = [p["functionResponse"] for p in last if "functionResponse" in p]
        said = " ".join(p.get("text", "") for p in last)
        if results:
            answer = f"Here is what I found: {results[0]['response']['result']}"
            content = sse([{"text": answer[:20]}]) + sse([{"text": answer[20:]}])
        elif "weather" in said.lower():
            declared = body["tools"][0]["functionDeclarations"][0]["name"]
            call = {"functionCall": {"name": declared, "args": {"location": "Oslo"}}}
            content = sse([call])
        else:
            content = sse([{"text": "Hello! How can I help you today?"}])
        return httpx.Response(200, content=content, headers={"content-type": "text/event-stream"})


async def test_style_a_cloud_agent_answers_with_the_tool() -> None:
    fake_gemini = FakeGemini()
    async with (
        FakeDeepgram(transcripts=[QUESTION], api_key="deepgram-key") as fake_deepgram,
        FakeElevenLabs(api_key="elevenlabs-key") as fake_elevenlabs,
    ):
        with respx.mock(assert_all_called=True) as router:
            route = router.post(
                f"{GEMINI}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
            ).mock(side_effect=fake_gemini)
            edge = InMemoryEdge(realtime_playout=False)

            async def create_agent(**kwargs: Any) -> Agent:
                agent = Agent(
                    edge=edge,
                    agent_user=User(name="Assistant", id="agent"),
                    instructions="You are a helpful voice assistant.",
                    llm=gemini.LLM("gemini-2.5-flash", api_key="gemini-key", base_url=GEMINI),
                    tts=elevenlabs.TTS(
                        api_key="elevenlabs-key",
                        ws_url=fake_elevenlabs.url,
                        base_url="http://elevenlabs.fake",  # HTTP fallback: not expected here
                    ),
                    stt=deepgram.STT(api_key="deepgram-key", base_url=fake_deepgram.url),
                )

                @agent.llm.register_function(description="Get the current weather for a location")
                async def get_weather(location: str) -> str:
                    return f"The weather in {location} is sunny."

                return agent

            async def join_call(agent: Agent, call_type: str, call_id: str) -> None:
                call = await agent.create_call(call_type, call_id)
                async with agent.join(call):
                    await agent.simple_response("Hello! How can I help you today?")
                    await agent.finish()

            agent = await create_agent()
            tools: list[ToolCalled] = []
            task = asyncio.create_task(join_call(agent, "default", "cloud-style-a"))
            connection = await edge.wait_for_connection("cloud-style-a")
            await until(lambda: agent.session is not None and agent.session.metrics.turns == 1)
            session = agent.session
            assert session is not None
            session.events.subscribe(tools.append, ToolCalled)
            greeted = connection.audio_output.seconds_written
            assert greeted > 0

            await connection.push_speech(1.0)  # the user asks; Deepgram transcribes
            await connection.push_silence(0.8)
            await until(lambda: session.metrics.turns == 2)

            assert session.chat_ctx.last("user").content == QUESTION  # type: ignore[union-attr]
            assert [m.content for m in session.chat_ctx if m.role == "tool"] == [
                "The weather in Oslo is sunny."
            ]
            answer = session.chat_ctx.last("assistant").content  # type: ignore[union-attr]
            assert answer == "Here is what I found: The weather in Oslo is sunny."
            assert [(t.name, json.loads(t.arguments), t.result) for t in tools] == [
                ("get_weather", {"location": "Oslo"}, "The weather in Oslo is sunny.")
            ]
            # The tool result went back to Gemini with the call, and the answer was spoken.
            assert route.call_count == 3
            returned = fake_gemini.bodies[-1]["contents"][-1]["parts"][0]["functionResponse"]
            assert returned == {
                "name": "get_weather",
                "response": {"result": "The weather in Oslo is sunny."},
            }
            assert " ".join(fake_elevenlabs.texts).endswith("The weather in Oslo is sunny.")
            assert connection.audio_output.seconds_written > greeted + 0.3
            assert fake_deepgram.headers[0]["Authorization"] == "Token deepgram-key"
            assert session.metrics.stt_audio_seconds > 0.9

            await connection.close()
            await asyncio.wait_for(task, 30)
            assert session.state is SessionState.CLOSED
