"""The whole stack in a real browser: headless Chromium ⇄ WebRTC edge ⇄ engine, behind a Runner.

A style-A agent built from testing-kit parts (scripted `FakeSTT`, `FakeLLM`, `FakeTTS`,
`FakeVAD`) runs on the ``webrtc`` edge under an `AgentLauncher` served by a `Runner` (uvicorn
in this process, so the agent's side can be measured directly). Chromium opens the demo page;
its fake microphone plays a WAV whose speech is scripted in time (silence, speech, silence…).

Chromium is Debian's ``chromium``; the tests skip without it and fail when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from parley import Agent, AgentLauncher, User
from parley.events import AgentTurnStarted, SessionEvent
from parley.frames import AudioFrame
from parley.session import AgentSession
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, until
from parley.testing.vad import FakeVADStream
from parley.vad import VADEvent
from parley_server import Runner
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.opus import FRAME_SECONDS
from webrtc_chromium import (
    Browser,
    Page,
    launch_chromium,
    require_chromium,
    serve,
    speech_schedule_wav,
)

ARTIFACTS = Path(__file__).parent / "artifacts"
VOICED = 1.2  # seconds of each scripted user utterance
LEAD_IN = 1.5  # silence before the first one: the page connects meanwhile
IDLE_TIMEOUT = 1.0


# --- the agent's ears: a VAD that records what the agent hears and when ----------------------


class EarVADStream(FakeVADStream):
    """`FakeVADStream` that records each frame's level and stamps each event (perf_counter)."""

    def __init__(self, vad: EarVAD) -> None:
        super().__init__(vad.capabilities, vad.options, vad.threshold)
        self.ear = vad

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        ear = self.ear
        ear.frames_pushed += 1  # before the engine handles this frame's events
        events = super().push(frame)
        now = time.perf_counter()
        ear.levels.append((now, frame.rms(), frame.duration, self.speaking))
        ear.events.extend((now, event) for event in events)
        ear.event_frames.extend(ear.frames_pushed for _ in events)
        return events


class EarVAD(FakeVAD):
    def __init__(self) -> None:
        super().__init__()
        self.levels: list[tuple[float, float, float, bool]] = []  # (at, rms, seconds, speech)
        self.events: list[tuple[float, VADEvent]] = []
        self.frames_pushed = 0
        self.event_frames: list[int] = []  # per event: the number of the frame that caused it

    def stream(self) -> EarVADStream:
        stream = EarVADStream(self)
        self.streams.append(stream)
        return stream

    def onsets(self) -> list[float]:
        return [at for at, event in self.events if event.type == "speech_started"]

    def onset_frames(self) -> list[int]:
        return [
            frame
            for (_, event), frame in zip(self.events, self.event_frames, strict=True)
            if event.type == "speech_started"
        ]

    def utterances(self) -> list[tuple[float, float]]:
        """(speech duration in seconds, RMS of the frames inside it) per ended utterance."""
        found: list[tuple[float, float]] = []
        starts = self.onsets()
        for index, (at, event) in enumerate(
            (at, e) for at, e in self.events if e.type == "speech_ended"
        ):
            begin = starts[index]
            inside = [rms for t, rms, _, speech in self.levels if begin <= t <= at and speech]
            energy = float(np.sqrt(np.mean(np.square(inside)))) if inside else 0.0
            found.append((event.speech_duration, energy))
        return found


# --- the server: a Runner with a style-A launcher ---------------------------------------------


@dataclass
class Rig:
    base_url: str
    runner: Runner
    page: Page
    browser: Browser
    agents: list[Agent] = field(default_factory=list)
    events: list[tuple[float, SessionEvent]] = field(default_factory=list)

    @property
    def launcher(self) -> AgentLauncher:
        return self.runner.launcher

    async def start_session(self, call_id: str) -> AgentSession:
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            started = await http.post(f"/calls/{call_id}/sessions", json={})
        assert started.status_code == 201, started.text
        session: AgentSession | None = self.launcher.get_session(started.json()["session_id"])
        assert session is not None
        session.events.subscribe(
            lambda e: self.events.append((time.perf_counter(), e)), SessionEvent
        )
        return session

    def vad(self) -> EarVAD:
        vad = self.agents[-1].vad
        assert isinstance(vad, EarVAD)
        return vad


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, schedule: list[float], script: list[str], replies: list[str]
) -> AsyncIterator[Rig]:
    chromium = require_chromium()
    wav = tmp_path / "user.wav"
    speech_schedule_wav(wav, schedule, sample_rate=16000)
    agents: list[Agent] = []

    async def create_agent(**params: Any) -> Agent:
        agent = Agent(
            "You are a test agent.",
            edge=WebRTCEdge(loopback=True),
            agent_user=User("Assistant", "agent"),
            stt=FakeSTT(script, min_silence=0.3),
            llm=FakeLLM(replies),
            tts=FakeTTS(),
            vad=EarVAD(),
        )
        agents.append(agent)
        return agent

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    launcher = AgentLauncher(
        create_agent,
        join_call,
        agent_idle_timeout=IDLE_TIMEOUT,
        maintenance_interval=0.2,
        drain_timeout=0.5,
        warm_up=False,
    )
    runner = Runner(launcher)
    async with (
        serve(runner.fast_api, lifespan=True) as base_url,
        launch_chromium(chromium, fake_audio=wav) as browser,
    ):
        page = await browser.open(f"{base_url}/webrtc/")
        yield Rig(base_url, runner, page, browser, agents)


async def join(rig: Rig, call_id: str) -> tuple[AgentSession, WebRTCConnection]:
    """Start the agent through the HTTP API, then join from the page with the microphone."""
    session = await rig.start_session(call_id)
    connection = session.connection
    assert isinstance(connection, WebRTCConnection)
    await rig.page.evaluate(f"document.getElementById('call').value = {call_id!r}")
    # The fake microphone is a file, as with headphones: no echo to cancel. (With Chromium's
    # echo canceller on, the user's speech while the agent talks arrives as silence.)
    await rig.page.evaluate("parley.micConstraints.echoCancellation = false")
    await rig.page.click("#join")  # the fake microphone starts its WAV now
    await rig.page.wait_for("parley.connection === 'connected'")
    return session, connection


async def session_gone(rig: Rig, call_id: str, session_id: str) -> None:
    async with httpx.AsyncClient(base_url=rig.base_url) as http:

        async def gone() -> bool:
            return (await http.get(f"/calls/{call_id}/sessions/{session_id}")).status_code == 404

        async with asyncio.timeout(30):  # the idle timeout, then a maintenance pass
            while not await gone():
                await asyncio.sleep(0.1)


# --- the tests ----------------------------------------------------------------------------------


async def test_conversation_in_chromium_through_the_engine(tmp_path: Path) -> None:
    replies = ["Hello there, nice to meet you.", "I can listen, think and talk back in real time."]
    schedule = [LEAD_IN, VOICED, 4.0, VOICED, 30.0]
    async with running(tmp_path, schedule, ["hello agent", "what can you do"], replies) as rig:
        session, connection = await join(rig, "e2e-talk")
        page = rig.page

        # The agent hears the first utterance as audio: its length and loudness are right.
        await until(lambda: rig.vad().utterances(), 20, what="the agent to hear an utterance")
        duration, energy = rig.vad().utterances()[0]
        assert VOICED - 0.3 <= duration <= VOICED + 0.4, duration
        assert 0.03 <= energy <= 0.5, energy
        stt = rig.agents[-1].stt
        assert isinstance(stt, FakeSTT)
        final = next(e.event for e in stt.streams[0].emitted if e.event.type == "final")
        assert final.text == "hello agent"
        assert VOICED - 0.3 <= final.audio_duration <= VOICED + 0.4

        # The page hears the reply (FakeTTS speaks a 220 Hz tone) and shows the transcript.
        await page.wait_for("parley.remoteRmsPeak > 0.05")
        assert abs(await page.evaluate("parley.remotePeakHz") - 220) < 30
        await page.wait_for("parley.messages.some(m => m.type === 'turn_metrics')")

        # Second turn: screenshots while the user asks (mic meter, partial transcript) and
        # while the agent answers (agent meter, state), with turn 1's latency bar shown.
        await page.wait_for(
            "parley.micRms > 0.02 && parley.messages.some(m => m.type === 'transcript'"
            " && !m.final && m.text.startsWith('what'))",
            20,
        )
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(ARTIFACTS / "webrtc_e2e_user_speaking.png")
        await page.wait_for(
            "parley.messages.some(m => m.type === 'transcript' && m.final"
            " && m.text === 'what can you do')",
            20,
        )
        await page.wait_for("parley.agentState === 'speaking' && parley.remoteRms > 0.05", 20)
        await page.screenshot(ARTIFACTS / "webrtc_e2e_conversation.png")
        await page.wait_for("parley.messages.filter(m => m.type === 'turn_metrics').length == 2")

        messages: list[dict[str, Any]] = await page.evaluate("parley.messages")
        finals = [
            (m["role"], m["text"]) for m in messages if m["type"] == "transcript" and m["final"]
        ]
        assert finals == [
            ("user", "hello agent"),
            ("agent", replies[0]),
            ("user", "what can you do"),
            ("agent", replies[1]),
        ]
        assert any(m["type"] == "transcript" and not m["final"] for m in messages)  # partials
        states = [m["state"] for m in messages if m["type"] == "state"]
        assert {"listening", "thinking", "speaking"} <= set(states)
        metrics = [m for m in messages if m["type"] == "turn_metrics"]
        assert all(m["first_audio_sent_ms"] is not None for m in metrics)
        shown = await page.evaluate(
            "[...document.querySelectorAll('#transcript li .text')].map(e => e.textContent)"
        )
        assert shown == [text for _, text in finals]
        assert await page.evaluate("document.querySelectorAll('#turns li').length") == 2
        assert session.metrics.turns == 2

        # Leaving closes the participant; alone, the agent's session ends after the idle timeout.
        await page.click("#leave")
        await until(lambda: not connection.humans(), 30, what="the participant to be closed")
        await session_gone(rig, "e2e-talk", session.id)
        assert session.closed
        assert rig.launcher.stats().running == 0


async def test_barge_in_over_webrtc_stops_the_agent_within_the_bar(tmp_path: Path) -> None:
    story = " ".join(f"This is sentence number {i} of a very long story." for i in range(1, 40))
    # The user asks, the agent starts the story, the user interrupts 3 s into it.
    schedule = [LEAD_IN, VOICED, 3.5, VOICED, 30.0]
    # Not a lone "stop": that would only interrupt, with no reply to wait for below.
    script = ["tell me a story", "what about cats"]
    async with running(tmp_path, schedule, script, [story, "Okay."]) as rig:
        session, connection = await join(rig, "e2e-barge")
        output = connection.output

        # Stamp every flush (with the number of audio frames the agent had read by then) and
        # every packet the call sends (agent side).
        vad = rig.vad()
        flushes: list[tuple[float, int, int]] = []
        packets: list[tuple[float, int, bool]] = []
        flush, payload_for_tick = output.flush, output.payload_for_tick

        def stamped_flush() -> float:
            tick = output.clock_tick() if output.running else -1
            flushes.append((time.perf_counter(), tick, vad.frames_pushed))
            return flush()

        def logged_payload(tick: int) -> bytes:
            payload = payload_for_tick(tick)
            packets.append((time.perf_counter(), tick, payload is not output.silence))
            return payload

        output.flush = stamped_flush  # type: ignore[method-assign]
        output.payload_for_tick = logged_payload  # type: ignore[method-assign]

        await until(lambda: len(vad.onsets()) >= 2, 30, what="the user to interrupt")
        onset, onset_frame = vad.onsets()[1], vad.onset_frames()[1]
        # The agent was speaking the story when the user started again.
        assert sum(speech for at, _, speech in packets if at < onset) >= 50  # ≥ 1 s of it
        flush_at, flush_tick, flush_frame = next(f for f in flushes if f[0] >= onset)
        # The engine's bar: the output is flushed while the agent still handles the audio
        # frame in which the VAD heard the onset, before it reads the next one (no await in
        # between, so no wall-clock bar that a loaded machine could miss).
        assert flush_frame == onset_frame

        # Until the agent's next reply, every packet after the flush is silence: the story
        # stopped at the flush's 20 ms tick at the latest.
        await until(
            lambda: sum(1 for at, _, _ in packets if at > flush_at) >= 25,
            what="25 packets after it",
        )
        next_reply = [at for at, e in rig.events if isinstance(e, AgentTurnStarted) and at > onset]
        next_reply_at = next_reply[0] if next_reply else float("inf")
        after = [(tick, speech) for at, tick, speech in packets if flush_at < at < next_reply_at]
        assert len(after) >= 25
        assert not any(speech for _, speech in after)
        assert after[0][0] <= flush_tick + 1
        assert await rig.page.wait_for("parley.remoteRms < 0.01")

        # The history keeps what the user heard of the story, marked as interrupted.
        await until(lambda: session.metrics.turns >= 2, 20, what="the second turn's reply")
        assistant = [m for m in session.chat_ctx if m.role == "assistant"]
        heard = assistant[0]
        assert heard.interrupted
        assert 0 < len(heard.content) < len(story)
        assert story.startswith(heard.content.rsplit(" ", 1)[0])
        user_lines = [m.content for m in session.chat_ctx if m.role == "user"]
        assert user_lines == script
        print(
            f"barge-in: VAD onset → flush {1000 * (flush_at - onset):.2f} ms; "
            f"first silent packet {1000 * (packets_after(packets, flush_at) - onset):.1f} ms "
            f"after onset (packetization {1000 * FRAME_SECONDS:.0f} ms); "
            f"heard {len(heard.content)}/{len(story)} characters of the story"
        )


def packets_after(packets: list[tuple[float, int, bool]], moment: float) -> float:
    return next(at for at, _, _ in packets if at > moment)


@pytest.fixture(autouse=True)
def _quiet_aioice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="aioice")
    caplog.set_level("WARNING", logger="aiortc")
