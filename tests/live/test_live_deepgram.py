"""Deepgram against the real service; skipped unless DEEPGRAM_API_KEY is set.

The speech to transcribe comes from Deepgram's own TTS, so no audio file is needed.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from parley.audio import resample
from parley.frames import AudioFrame, concat_audio
from parley.stt import STTEvent
from parley.testing import silence_frames

pytestmark = pytest.mark.skipif(
    not os.environ.get("DEEPGRAM_API_KEY"),
    reason="set DEEPGRAM_API_KEY to run the live Deepgram tests",
)

SENTENCE = "The quick brown fox jumps over the lazy dog."


async def spoken(text: str) -> AudioFrame:
    from parley_deepgram.tts import DeepgramTTS

    tts = DeepgramTTS()
    frames = [frame async for frame in tts.synthesize(text)]
    await tts.aclose()
    return resample(concat_audio(frames), 16000)


async def transcribe(audio: AudioFrame, **options: object) -> list[STTEvent]:
    from parley_deepgram.stt import DeepgramSTT

    stream = DeepgramSTT(**options).stream()  # type: ignore[arg-type]
    step = 320  # 20 ms frames, in real time so endpointing behaves as on a call
    for start in range(0, audio.samples, step):
        await stream.push(AudioFrame(audio.data[start : start + step], 16000))
        await asyncio.sleep(0.02)
    for frame in silence_frames(1.5, 16000):
        await stream.push(frame)
        await asyncio.sleep(0.02)
    events: list[STTEvent] = []
    async with asyncio.timeout(20):
        async for event in stream:
            events.append(event)
            if event.type == "end_of_turn":
                break
    await stream.aclose()
    return events


async def test_tts_streams_linear16() -> None:
    audio = await spoken(SENTENCE)
    assert audio.duration > 1.0


async def test_nova_transcribes_with_turn_events() -> None:
    events = await transcribe(await spoken(SENTENCE))
    text = " ".join(e.text for e in events if e.type == "final").lower()
    assert "fox" in text and "lazy dog" in text
    assert any(e.type == "partial" for e in events)
    assert sum(e.audio_duration for e in events) > 1.0


async def test_flux_eager_end_of_turn() -> None:
    events = await transcribe(await spoken(SENTENCE), eager_turn_detection=True)
    text = " ".join(e.text for e in events if e.type in ("final", "end_of_turn")).lower()
    assert "fox" in text
    assert events[-1].type == "end_of_turn"
