"""The demo page's latency "as heard" is true: it agrees with an independent measurement.

`examples/demo.py run` (offline models, the WebRTC edge) answers one spoken question in
headless Chromium; its fake microphone plays the question spoken by Piper. The page times the
turn on its own audio clock (``window.parleyTurns``: the end of the speech in the microphone
track it sends → the first sound of the reply it plays). Independently, the test records both
tracks sample by sample in a second AudioContext and finds, in Python, where the question
starts in the microphone track; the question's known length (from the WAV) then gives its end,
and the first non-silent sample of the agent's track after it gives the reply. The two
latencies must agree within 100 ms, and the page must show the turn beside the agent's stages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from demo_process import DemoProcess
from page_audio import STEREO_RECORDER_JS, decode_stereo
from parley.frames import AudioFrame
from spoken_audio import speech_bounds, spoken_question_wav
from webrtc_chromium import launch_chromium, require_chromium

QUESTION = "What is the weather in London?"
LEAD_IN = 8.0  # the page connects and the greeting ends before the question
TRAILING = 40.0  # Chromium loops the file: keep the question from coming back
RECORD_RATE = 16000
AGENT_SOUND = 0.01  # a sample of the agent's track this loud is sound, not silence
AGREE_MS = 100


@pytest.fixture
def chromium() -> str:
    return require_chromium()  # before the demo starts: skip (or fail on CI) at once


@pytest.fixture
def demo(chromium: str) -> Iterator[DemoProcess]:
    process = DemoProcess("page-latency")
    try:
        yield process
    finally:
        process.stop()


def independent_latency(
    mic: np.ndarray[Any, Any], agent: np.ndarray[Any, Any], question: AudioFrame
) -> tuple[float, float]:
    """(end of the question, first reply sound) in seconds from the recording's start.

    The question is found where it starts in the recorded microphone track; its end is
    that start plus its known speech length, not a threshold on the recorded tail.
    """
    start, end = speech_bounds(question)
    recorded = AudioFrame(np.rint(mic * 32767).astype(np.int16), RECORD_RATE)
    recorded_start, _ = speech_bounds(recorded)
    question_end = recorded_start + (end - start)
    after = round(question_end * RECORD_RATE)
    loud = np.flatnonzero(np.abs(agent[after:]) > AGENT_SOUND)
    assert len(loud), "the recording has no reply after the question"
    return question_end, (after + int(loud[0])) / RECORD_RATE


async def test_page_latency_agrees_with_an_independent_measurement(
    tmp_path: Path, chromium: str, demo: DemoProcess
) -> None:
    wav = tmp_path / "question.wav"
    question = await spoken_question_wav(wav, QUESTION, lead_in=LEAD_IN, trailing=TRAILING)
    url = await asyncio.to_thread(demo.wait_for_url)

    async with launch_chromium(chromium, fake_audio=wav) as browser:
        page = await browser.open(url)
        await page.evaluate(STEREO_RECORDER_JS)
        # The file as it is: no echo cancellation, noise suppression or gain control.
        await page.evaluate(
            "parley.micConstraints = {echoCancellation: false, noiseSuppression: false,"
            " autoGainControl: false}"
        )
        await page.click("#join")  # the fake microphone starts the WAV now
        await page.wait_for("parley.connection === 'connected'", 30)
        await page.wait_for("parley.remoteStream !== undefined", 10)
        assert await page.evaluate(f"stereoRecorder.start({RECORD_RATE})") == RECORD_RATE

        turn: dict[str, Any] = await page.wait_for("parleyTurns[0]", LEAD_IN + 40)
        # Another second of audio through the recorder (its clock) so the reply's start is in.
        recorded = await page.evaluate("stereoRecorder.length")
        await page.wait_for(f"stereoRecorder.length >= {recorded + RECORD_RATE}", 30)
        mic, agent = decode_stereo(await page.evaluate("stereoRecorder.take()"))
        # The agent's own breakdown arrives at the reply's end and is shown beside it.
        await page.wait_for("parleyTurns[0].server !== null", 60)
        row = await page.wait_for(
            "document.querySelector('#turns li .figure') &&"
            " document.querySelector('#turns li .figure').textContent",
            10,
        )
        rest = await page.evaluate("document.querySelectorAll('#turns li .bar > i.rest').length")
        server = await page.evaluate("parleyTurns[0].server")
        errors = await page.evaluate("parley.errors")

    question_end, reply_start = independent_latency(mic, agent, question)
    independent_ms = (reply_start - question_end) * 1000
    print(
        f"\nas heard in the page: {turn['heardMs']} ms; independent: {independent_ms:.0f} ms;"
        f" agent's end of speech → first audio sent: {server['first_audio_sent_ms']} ms"
    )
    assert errors == []
    assert 100 < independent_ms < 15000, independent_ms
    assert abs(turn["heardMs"] - independent_ms) <= AGREE_MS
    # What the page heard includes what the agent cannot see (VAD wait, network, jitter).
    assert turn["heardMs"] > server["first_audio_sent_ms"]
    assert row == f"{turn['heardMs']} ms"
    assert rest == 1
