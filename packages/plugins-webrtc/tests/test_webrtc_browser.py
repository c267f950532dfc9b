"""The WebRTC edge against real headless Chromium on the demo page (fake mic from a WAV)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
from fastapi import FastAPI
from parley.edge import DataReceived, ParticipantJoined, ParticipantLeft, User
from parley.testing import until
from parley.testing.signals import tone_frames
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router
from webrtc_chromium import (
    Browser,
    Page,
    launch_chromium,
    require_chromium,
    serve,
    speech_like_wav,
)

ARTIFACTS = Path(__file__).parent / "artifacts"
E = TypeVar("E")
VOICED_RMS = 0.02


@dataclass
class Call:
    connection: WebRTCConnection
    page: Page
    browser: Browser
    events: list[object] = field(default_factory=list)

    async def event(self, kind: type[E], within: float = 20.0) -> E:
        found = await until(
            lambda: next((e for e in self.events if isinstance(e, kind)), None),
            within,
            what=f"a {kind.__name__} event",
        )
        return found


@contextlib.asynccontextmanager
async def browser_call(tmp_path: Path, *, liveness_timeout: float = 10.0) -> AsyncIterator[Call]:
    """An agent on call "demo", the app serving it, and Chromium on the demo page (not joined)."""
    chromium = require_chromium()
    wav = tmp_path / "speech.wav"
    speech_like_wav(wav)
    rooms = Rooms()
    edge = WebRTCEdge(rooms=rooms, loopback=True, liveness_timeout=liveness_timeout)
    connection = await edge.join(await edge.create_call("default", "demo"), User("Agent", "agent"))
    app = FastAPI()
    app.include_router(create_router(rooms))
    async with serve(app) as base_url, launch_chromium(chromium, fake_audio=wav) as browser:
        page = await browser.open(f"{base_url}/webrtc/?call=demo")
        call = Call(connection, page, browser)
        connection.events.subscribe(call.events.append)
        try:
            yield call
        finally:
            await edge.aclose()


class Listener:
    """A stand-in agent until the engine lands: measures what it hears, frame by frame."""

    def __init__(self, connection: WebRTCConnection) -> None:
        self.connection = connection
        self.frames = 0
        self.voiced_frames = 0
        self.voiced_energy = 0.0
        self.formats: set[tuple[int, int, str, int]] = set()
        self.spectrum = np.zeros(481)
        self._task = asyncio.ensure_future(self._run())

    @property
    def voiced_seconds(self) -> float:
        return self.voiced_frames * 0.02

    @property
    def voiced_rms(self) -> float:
        return float(np.sqrt(self.voiced_energy / max(1, self.voiced_frames)))

    async def _run(self) -> None:
        async for _participant, frame in self.connection.audio_input():
            self.frames += 1
            self.formats.add((frame.sample_rate, frame.channels, frame.format, frame.samples))
            rms = frame.rms()
            if rms > VOICED_RMS:
                self.voiced_frames += 1
                self.voiced_energy += rms * rms
                samples = frame.to_float32().data[:, 0]
                self.spectrum += np.abs(np.fft.rfft(samples))

    async def wait_voiced(self, seconds: float) -> None:
        await until(lambda: self.voiced_seconds >= seconds, 30, what=f"{seconds} s of voiced audio")

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def speak_tone(connection: WebRTCConnection, seconds: float, frequency: int = 440) -> None:
    for frame in tone_frames(seconds, 48000, frequency=frequency, frame_duration=0.1):
        await connection.audio_output.write(frame)


async def test_browser_call_speech_reply_data_and_leave(tmp_path: Path) -> None:
    async with browser_call(tmp_path) as call:
        connection, page = call.connection, call.page
        listener = Listener(connection)
        await page.click("#join")
        await page.wait_for("parley.connection === 'connected'")
        joined = await call.event(ParticipantJoined)
        assert isinstance(joined, ParticipantJoined)
        assert joined.participant.user.name == "Guest"
        assert [p.id for p in connection.humans()] == [joined.participant.id]

        # The agent hears the fake microphone: voiced audio, 48 kHz mono 20 ms frames.
        await listener.wait_voiced(1.0)
        assert listener.formats == {(48000, 1, "int16", 960)}
        assert 0.03 < listener.voiced_rms < 0.5
        peak_hz = int(np.argmax(listener.spectrum[3:])) * 50 + 150  # 50 Hz bins, skip DC
        assert peak_hz % 150 == 0, f"the strongest component {peak_hz} Hz is not a harmonic"

        # The agent answers: narration on the data channel, then a tone the page hears.
        await connection.send_data({"type": "state", "state": "thinking"})
        await connection.send_data(
            {"type": "transcript", "role": "user", "text": "hello agent", "final": True}
        )
        await connection.send_data(
            {"type": "transcript", "role": "agent", "text": "Hello", "final": False}
        )
        await connection.send_data(
            {"type": "transcript", "role": "agent", "text": "Hello! A tone for you.", "final": True}
        )
        await connection.send_data(
            {
                "type": "turn_metrics",
                "turn_id": "1",
                "transcript_ms": 180,
                "first_token_ms": 420,
                "first_audio_ms": 610,
                "first_audio_sent_ms": 640,
            }
        )
        await connection.send_data({"type": "state", "state": "speaking"})
        speaking = asyncio.ensure_future(speak_tone(connection, 3.0))
        await page.wait_for("parley.remoteRmsPeak > 0.05")
        kinds = await page.wait_for(
            "(() => { const k = new Set(parley.messages.map(m => m.type));"
            " return k.has('transcript') && k.has('turn_metrics') && k.has('state')"
            " && [...k]; })()"
        )
        assert {"transcript", "turn_metrics", "state"} <= set(kinds)
        assert await page.evaluate("document.querySelectorAll('#turns .bar > div').length") == 4
        assert await page.evaluate("document.getElementById('agent-state').textContent") == (
            "speaking"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(ARTIFACTS / "webrtc_demo_call.png")

        # Typed text reaches the agent as DataReceived.
        assert await page.evaluate("parley.say('what is the weather?')")
        received = await call.event(DataReceived)
        assert isinstance(received, DataReceived)
        assert received.message == {"type": "text", "text": "what is the weather?"}
        await speaking
        await connection.audio_output.wait_for_playout()

        # Leaving from the page closes the participant on the agent's side.
        await page.click("#leave")
        left = await call.event(ParticipantLeft)
        assert isinstance(left, ParticipantLeft)
        assert left.participant.id == joined.participant.id
        assert connection.humans() == []
        assert await page.wait_for("parley.connection === 'left'")
        await listener.stop()


async def test_browser_barge_in_stops_outbound_audio_within_one_frame(tmp_path: Path) -> None:
    async with browser_call(tmp_path) as call:
        connection, page = call.connection, call.page
        stop = asyncio.Event()

        @connection.events.on(DataReceived)
        def on_text(event: DataReceived) -> None:
            if event.message.get("text") == "stop":
                stop.set()

        await page.click("#join")
        await page.wait_for("parley.connection === 'connected'")
        joined = await call.event(ParticipantJoined)
        assert isinstance(joined, ParticipantJoined)
        peer = connection.peer(joined.participant.id)
        assert peer is not None and peer.audio_track is not None
        track = peer.audio_track

        # A long reply: the writer keeps the buffer topped up for 30 s of speech.
        speaking = asyncio.ensure_future(speak_tone(connection, 30.0))
        await page.wait_for("parley.remoteRms > 0.05")
        await page.evaluate("parley.say('stop')")
        await asyncio.wait_for(stop.wait(), 20)

        # Barge-in as the engine does it: stop producing, then drop what is buffered.
        speaking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await speaking
        speech_before = track.speech_frames_sent
        dropped = connection.audio_output.flush()
        assert dropped > 0.5
        assert connection.audio_output.buffered == 0

        sent_at_flush = track.frames_sent
        await until(lambda: track.frames_sent >= sent_at_flush + 25, what="25 more packets")
        # Every packet after the flush is silence: speech stopped within one 20 ms interval.
        assert track.speech_frames_sent - speech_before <= 1
        # …and the browser hears it stop.
        await page.wait_for("parley.remoteRms < 0.01")


async def test_browser_that_vanishes_is_cleaned_up(tmp_path: Path) -> None:
    async with browser_call(tmp_path, liveness_timeout=2.0) as call:
        await call.page.click("#join")
        await call.page.wait_for("parley.connection === 'connected'")
        joined = await call.event(ParticipantJoined)
        assert isinstance(joined, ParticipantJoined)
        call.browser.kill()  # no leave request, no goodbye: the tab is just gone
        left = await call.event(ParticipantLeft, within=30)
        assert isinstance(left, ParticipantLeft)
        assert left.participant.id == joined.participant.id
        assert call.connection.peer(joined.participant.id) is None
        assert call.connection.humans() == []


@pytest.fixture(autouse=True)
def _quiet_aioice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="aioice")
    caplog.set_level("WARNING", logger="aiortc")
