"""A phone call end to end on the offline parts: `examples/phone_agent.py` served by a real
server, called by a fake Twilio over a real WebSocket (Media Streams, µ-law at 8 kHz).

The caller is Piper: it speaks "What is the weather in London?" over the agent's greeting
(a barge-in: the agent must go quiet, ``clear`` reaching the caller within 50 ms of the VAD
hearing it), Silero and Whisper hear the question through the phone codec, SmolLM2 calls the
weather tool, Piper answers, and the answer travels back as µ-law; Whisper transcribes what the
caller received: it must be about London's weather and be the reply the agent sent. Then a key
press reaches the agent (it says which), the caller hangs up; a second call is hung up by the
agent's side (the HTTP session API): the stream closes and the call is ended through Twilio's
REST API (mocked). Nothing is left running after that.

Runs (never skips) wherever the dev environment is installed: the offline models come with it.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pytest
import respx
from parley import Agent
from parley.audio import resample
from parley.events import AgentTurnEnded, Interrupted, ToolCalled, UserTurnStarted
from parley.frames import AudioFrame
from parley.testing import until
from parley_whisper.stt import WhisperSTT
from spoken_audio import spoken_question

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "packages/plugins-twilio/tests"))

from fake_twilio import FakePhoneCall  # noqa: E402
from parley_twilio.g711 import ulaw_decode  # noqa: E402
from parley_twilio.line import default_lines  # noqa: E402
from phone_server import ACCOUNT, API_BASE, NUMBER, TOKEN, phone_server  # noqa: E402

QUESTION = "What is the weather in London?"
CLEAR_WITHIN = 0.05  # seconds from the VAD's speech start to `clear` at the caller
HANG_UP = re.compile(rf"{re.escape(API_BASE)}/2010-04-01/Accounts/{ACCOUNT}/Calls/(CA\w+)\.json")


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("phone_agent", ROOT / "examples/phone_agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@pytest.fixture
async def twilio_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[respx.MockRouter]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_API_BASE", API_BASE)
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", NUMBER)
    monkeypatch.delenv("TWILIO_PUBLIC_URL", raising=False)
    monkeypatch.setenv("PARLEY_LLM", "local")  # a cloud key in the environment changes nothing
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        mock.post(url__regex=HANG_UP.pattern).respond(200, json={"status": "completed"})
        yield mock


def hang_ups(mock: respx.MockRouter) -> list[str]:
    return [m.group(1) for c in mock.calls if (m := HANG_UP.fullmatch(str(c.request.url)))]


def agent_audio_after(call: FakePhoneCall, at: float) -> AudioFrame:
    """What the agent sent the caller after ``at`` (perf_counter), decoded to 8 kHz PCM."""
    payload = b"".join(
        base64.b64decode(r.message["media"]["payload"])
        for r in call.received
        if r.message["event"] == "media" and r.at > at
    )
    return AudioFrame(ulaw_decode(payload), 8000)


async def test_a_phone_call_on_the_offline_parts(twilio_api: respx.MockRouter) -> None:
    example = load_example()
    question = await spoken_question(QUESTION)
    caller_voice = resample(question, 8000).to_int16().data[:, 0]
    whisper = WhisperSTT()
    await whisper.warm_up()

    async def build() -> Agent:
        agent: Agent = example.build_agent()
        return agent

    before = asyncio.all_tasks()
    async with phone_server(build, join_call=example.join_call) as server:
        call = FakePhoneCall(server.media_url, TOKEN, "phone-e2e", parameters={"from": "+1555"})
        await call.connect()
        await until(lambda: "phone-e2e" in server.sessions, timeout=60, what="the session")
        session = server.sessions["phone-e2e"]
        speech_starts: list[float] = []
        interruptions: list[Interrupted] = []
        turns: list[AgentTurnEnded] = []
        tools: list[ToolCalled] = []
        digits: list[str] = []
        # The engine emits UserTurnStarted in the same step as the VAD's speech start, before
        # the barge-in pauses the agent: its wall-clock reading is the VAD's speech start.
        session.events.subscribe(
            lambda e: speech_starts.append(time.perf_counter()), UserTurnStarted
        )
        session.events.subscribe(interruptions.append, Interrupted)
        session.events.subscribe(turns.append, AgentTurnEnded)
        session.events.subscribe(tools.append, ToolCalled)
        session.events.subscribe(lambda e: digits.append(e.digit), example.twilio.DTMFReceived)

        # The greeting plays; the caller asks over it.
        await until(lambda: call.media_count >= 40, timeout=30, what="the greeting")
        await call.say(caller_voice)
        await call.silence(1.0)
        await until(lambda: call.clears, what="a clear after the caller spoke over the greeting")
        await until(lambda: interruptions, what="the greeting to be interrupted")
        assert speech_starts, "the VAD never heard the caller"
        clear_delay = call.clears[0] - speech_starts[0]
        assert 0 <= clear_delay <= CLEAR_WITHIN, f"clear {clear_delay * 1000:.1f} ms after"
        assert not interruptions[0].false_interruption

        # The answer: spoken to its end, then the caller's playback reaches its last mark.
        await until(lambda: any(not t.interrupted for t in turns), timeout=90, what="the answer")
        reply = next(t for t in turns if not t.interrupted)
        await until(
            lambda: call.marks_echoed and call.marks_echoed[-1] == str(call.media_count),
            timeout=30,
            what="the caller to hear the whole answer",
        )
        heard = await whisper.recognize(agent_audio_after(call, call.clears[0]))
        print(
            f"\nclear {clear_delay * 1000:.1f} ms after the VAD's speech start"
            f"\nagent said: {reply.text!r}\ncaller heard (Whisper): {heard!r}"
        )
        words = set(normalize(heard).split())
        assert [(t.name, t.error) for t in tools] == [("get_weather", False)], tools
        assert "london" in words, heard
        assert words & {"weather", "sunny", "degrees", "22", "twenty"}, heard
        assert jiwer.wer(normalize(reply.text), normalize(heard)) <= 0.25, heard

        # A key press reaches the session's events; the example's handler says it.
        await call.press("5")
        await until(lambda: digits == ["5"], what="the digit")
        await until(
            lambda: any("pressed 5" in t.text for t in turns), timeout=30, what="the digit said"
        )

        # The caller hangs up: the session ends, nothing to hang up through the API.
        await call.hang_up()
        await until(lambda: session.closed, what="the session to close")
        await until(lambda: server.launcher.stats().running == 0, what="the launcher to free it")
        assert hang_ups(twilio_api) == []

        # A second call, ended by the agent's side (the HTTP session API): the stream closes
        # and the call is hung up through Twilio's REST API.
        second = FakePhoneCall(server.media_url, TOKEN, "phone-e2e-2")
        await second.connect()
        await until(lambda: "phone-e2e-2" in server.sessions, timeout=60, what="the session")
        await until(lambda: server.launcher.stats().running == 1, what="the session to run")
        async with httpx.AsyncClient(base_url=server.base) as http:
            sessions = (await http.get("/calls/phone-e2e-2/sessions")).json()["sessions"]
            (listed,) = sessions
            closed = await http.delete(f"/calls/phone-e2e-2/sessions/{listed['session_id']}")
        assert closed.status_code in (200, 202), closed.text
        await asyncio.wait_for(second.closed.wait(), 10)
        assert second.close_code == 1000
        await until(lambda: hang_ups(twilio_api) == [second.call_sid], what="the REST hang-up")
        await second.close()
        await until(lambda: server.launcher.stats().running == 0, what="the session to end")
    await whisper.aclose()

    assert list(default_lines) == []

    def left() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]

    try:
        await until(lambda: not left(), timeout=5, what="no task left after the calls")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[t.get_coro() for t in left()]}") from None
