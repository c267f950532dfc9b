"""The zero-key demo in a real browser: a spoken question in, a spoken answer about it out.

`examples/demo.py run` starts as a user starts it (a process; Silero, Whisper, SmolLM2 on
llama.cpp and Piper; the WebRTC edge). Headless Chromium opens the printed URL; its fake
microphone plays "What is the weather in London?" spoken by Piper (48 kHz, silence around it;
not Paris: Whisper tiny.en often hears Piper's "in Paris is" as "impairs").
The page records the agent's audio as it arrives (WebAudio → 16 kHz PCM, fetched over CDP),
and Whisper transcribes that recording: it must talk about London and its weather, which the
agent only knows from its tool, and be the speech of the reply text the agent sent.

Chromium is Debian's ``chromium``; the test skips without it and fails when ``CI=true``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
from demo_process import DemoProcess
from parley.frames import AudioFrame
from parley_whisper.stt import WhisperSTT
from spoken_audio import spoken_question_wav
from webrtc_chromium import launch_chromium, require_chromium

QUESTION = "What is the weather in London?"
LEAD_IN = 6.0  # the page connects and the greeting plays before the question
TRAILING = 40.0  # Chromium loops the file: keep the question from coming back
RECORD_RATE = 16000

# Records the agent's audio once started, and notes where the user's final transcript arrived,
# so the test keeps what the agent said after the question (not the greeting).
RECORDER_JS = """
(() => {
  const rec = { chunks: [], length: 0, replyStart: null };
  rec.start = (rate) => {
    const context = new AudioContext({ sampleRate: rate });
    const source = context.createMediaStreamSource(parley.remoteStream);
    const tap = context.createScriptProcessor(4096, 1, 1);
    const mute = context.createGain();
    mute.gain.value = 0;
    tap.onaudioprocess = (event) => {
      if (rec.replyStart === null && parley.messages.some(
          (m) => m.type === "transcript" && m.role === "user" && m.final !== false)) {
        rec.replyStart = rec.length;
      }
      const samples = new Float32Array(event.inputBuffer.getChannelData(0));
      rec.chunks.push(samples);
      rec.length += samples.length;
    };
    source.connect(tap);
    tap.connect(mute);
    mute.connect(context.destination);
    rec.context = context;
    return context.sampleRate;
  };
  rec.take = () => {
    const start = rec.replyStart ?? 0;
    const pcm = new Int16Array(rec.length - start);
    let offset = -start;
    for (const chunk of rec.chunks) {
      for (let i = 0; i < chunk.length; i++, offset++) {
        if (offset >= 0) pcm[offset] = Math.max(-1, Math.min(1, chunk[i])) * 32767;
      }
    }
    let binary = "";
    const bytes = new Uint8Array(pcm.buffer);
    for (let i = 0; i < bytes.length; i += 8192) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return btoa(binary);
  };
  window.recorder = rec;
})();
"""


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@pytest.fixture
def chromium() -> str:
    return require_chromium()  # before the demo starts: skip (or fail on CI) at once


@pytest.fixture
def demo(chromium: str) -> Iterator[DemoProcess]:
    process = DemoProcess("offline-e2e")
    try:
        yield process
    finally:
        process.stop()


async def spoken_question(path: Path) -> None:
    await spoken_question_wav(path, QUESTION, lead_in=LEAD_IN, trailing=TRAILING)


async def test_spoken_question_gets_a_spoken_answer_about_it(
    tmp_path: Path, chromium: str, demo: DemoProcess
) -> None:
    wav = tmp_path / "question.wav"
    await spoken_question(wav)
    whisper = WhisperSTT()
    await whisper.warm_up()
    url = demo.wait_for_url()

    async with launch_chromium(chromium, fake_audio=wav) as browser:
        page = await browser.open(url)
        await page.evaluate(RECORDER_JS)
        await page.click("#join")  # the fake microphone starts the WAV now
        await page.wait_for("parley.connection === 'connected'", 30)
        await page.wait_for("parley.remoteStream !== undefined", 10)
        assert await page.evaluate(f"recorder.start({RECORD_RATE})") == RECORD_RATE

        # The question is heard, answered, and the answer played to its end.
        user_final = (
            "parley.messages.find(m => m.type === 'transcript' && m.role === 'user'"
            " && m.final !== false)"
        )
        heard: dict[str, Any] = await page.wait_for(user_final, LEAD_IN + 30)
        reply_js = (
            "parley.messages.slice(parley.messages.findIndex(m => m.type === 'transcript'"
            " && m.role === 'user')).find(m => m.type === 'transcript' && m.role === 'agent'"
            " && m.final !== false)"
        )
        reply: dict[str, Any] = await page.wait_for(reply_js, 45)
        await page.wait_for("parley.remoteRms < 0.005", 30)
        # The reply's last packets may trail its data-channel message: keep recording until
        # another second of audio has gone through the recorder (its clock, not the test's).
        recorded = await page.evaluate("recorder.length")
        await page.wait_for(f"recorder.length >= {recorded + RECORD_RATE}", 30)
        pcm = base64.b64decode(await page.evaluate("recorder.take()"))
        errors = await page.evaluate("parley.errors")
        latency = await page.evaluate(
            "parley.messages.filter(m => m.type === 'turn_metrics').map(m => m.first_audio_sent_ms)"
        )

    recording = AudioFrame(np.frombuffer(pcm, np.int16).copy(), RECORD_RATE)
    transcript = await whisper.recognize(recording)
    await whisper.aclose()
    words = set(normalize(transcript).split())
    print(
        f"\nuser said (page): {heard['text']!r}\nagent said (data channel): {reply['text']!r}\n"
        f"agent's audio on the page ({recording.duration:.1f} s), by Whisper: {transcript!r}\n"
        f"VAD end of speech → first reply audio sent, per turn (ms): {latency}"
    )
    assert errors == []
    assert "london" in normalize(heard["text"]), heard
    assert recording.rms() > 0.01, "the page received no reply audio"
    # Related to the question: the city, and the weather the tool reported.
    assert "london" in words, transcript
    assert words & {"weather", "sunny", "degrees", "22", "twenty"}, transcript
    # And it is the agent's reply, spoken: what the page heard is what the agent said.
    assert jiwer.wer(normalize(reply["text"]), normalize(transcript)) <= 0.25, transcript
    assert "you: " in demo.output() and "agent (" in demo.output()  # the conversation, printed
