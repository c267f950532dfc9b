"""OpenAI against the real service; skipped unless OPENAI_API_KEY is set.

The speech to transcribe comes from OpenAI's own TTS, so no audio file is needed.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from parley.audio import resample
from parley.chat import ChatContext
from parley.frames import AudioFrame, concat_audio
from parley.llm import collect
from parley.realtime import RealtimeEvent, RealtimeSession
from parley.tools import FunctionTool

pytestmark = pytest.mark.skipif(
    not os.environ.get("OPENAI_API_KEY"),
    reason="set OPENAI_API_KEY to run the live OpenAI tests",
)

LLM_MODEL = os.environ.get("PARLEY_LIVE_OPENAI_MODEL", "gpt-5.4-mini")
REALTIME_MODEL = os.environ.get("PARLEY_LIVE_OPENAI_REALTIME_MODEL", "gpt-realtime-2.1")
SENTENCE = "The quick brown fox jumps over the lazy dog."


async def get_weather(location: str) -> str:
    """Get the current weather for a location.

    Args:
        location: City name.
    """
    return f"The weather in {location} is sunny and 21 degrees."


async def spoken(text: str) -> AudioFrame:
    from parley_openai.tts import OpenAITTS

    tts = OpenAITTS()
    frames = [frame async for frame in tts.synthesize(text)]
    await tts.aclose()
    return concat_audio(frames)


async def events_until(session: RealtimeSession, kind: str) -> list[RealtimeEvent]:
    events: list[RealtimeEvent] = []
    async with asyncio.timeout(60):
        async for event in session:
            events.append(event)
            if event.type == kind:
                break
    return events


async def test_llm_streams_text_and_usage() -> None:
    from parley_openai.llm import OpenAILLM

    llm = OpenAILLM(LLM_MODEL)
    ctx = ChatContext()
    ctx.set_instructions("Answer in one short sentence.")
    ctx.add("user", "Say the word pong.")
    result = await collect(llm.chat(ctx))
    await llm.aclose()
    assert "pong" in result.text.lower()
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


async def test_llm_calls_a_tool_and_uses_its_result() -> None:
    from parley_openai.llm import OpenAILLM

    llm = OpenAILLM(LLM_MODEL)
    tool = FunctionTool(get_weather)
    ctx = ChatContext()
    ctx.set_instructions("Use the tools you have. Answer in one sentence.")
    ctx.add("user", "What is the weather in Paris?")
    first = await collect(llm.chat(ctx, [tool]))
    (call,) = first.tool_calls
    assert call.name == "get_weather"
    assert "paris" in json.loads(call.arguments)["location"].lower()
    ctx.add("assistant", first.text, tool_calls=[call])
    ctx.add("tool", await tool.invoke(call.arguments), tool_call_id=call.id, name=call.name)
    second = await collect(llm.chat(ctx, [tool]))
    await llm.aclose()
    assert "21" in second.text or "sunny" in second.text.lower()


async def test_tts_streams_24k_audio_and_stt_reads_it_back() -> None:
    from parley_openai.stt import OpenAISTT

    audio = await spoken(SENTENCE)
    assert audio.sample_rate == 24000 and audio.duration > 1.0
    stt = OpenAISTT()
    text = await stt.recognize(resample(audio, 16000))
    await stt.aclose()
    assert "fox" in text.lower() and "dog" in text.lower()


async def test_realtime_answers_text_with_speech_and_usage() -> None:
    from parley_openai.realtime import OpenAIRealtime

    session = await OpenAIRealtime(REALTIME_MODEL).connect(instructions="Answer in a few words.")
    await session.push_text("Say hello.")
    events = await events_until(session, "response_done")
    await session.aclose()
    assert any(e.type == "audio" for e in events)
    assert any(e.type == "agent_transcript" and e.final and e.text for e in events)
    assert events[-1].usage is not None and events[-1].usage.output_tokens > 0


async def test_realtime_hears_speech_and_calls_a_tool() -> None:
    from parley_openai.realtime import OpenAIRealtime

    tool = FunctionTool(get_weather)
    session = await OpenAIRealtime(REALTIME_MODEL).connect(
        instructions="Use the tools you have. Answer in one sentence.", tools=[tool]
    )
    question = await spoken("What is the weather in Paris right now?")
    silence = AudioFrame.silence(1.5, 24000)
    for frame in (question, silence):
        for start in range(0, frame.samples, 480):
            await session.push_audio(AudioFrame(frame.data[start : start + 480], 24000))
            await asyncio.sleep(0.005)
    events = await events_until(session, "tool_call")
    assert any(e.type == "user_speech_started" for e in events)
    call = events[-1].tool_call
    assert call is not None and call.name == "get_weather"
    await session.send_tool_result(call, await tool.invoke(call.arguments))
    answer = await events_until(session, "response_done")
    await session.aclose()
    assert any(e.type == "audio" for e in answer)
