"""The testing kit's fake TTS and VAD, and the tone they share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from parley.frames import AudioFrame, concat_audio
from parley.testing import FakeTTS, FakeVAD, tone
from parley.testing.signals import level, silence_frames, tone_frames
from parley.vad import VADOptions


async def read_into(stream: AsyncIterator[AudioFrame], received: list[AudioFrame]) -> None:
    async for frame in stream:
        received.append(frame)


async def synthesize(tts: FakeTTS, text: str) -> list[AudioFrame]:
    return [frame async for frame in tts.synthesize(text)]


async def test_audio_is_a_tone_whose_length_follows_the_text() -> None:
    tts = FakeTTS(seconds_per_char=0.01)
    frames = await synthesize(tts, "x" * 25)  # 0.25 s
    assert [f.samples for f in frames] == [480] * 12 + [240]
    assert all(f.sample_rate == 24000 and f.channels == 1 for f in frames)
    audio = concat_audio(frames)
    assert audio.duration == pytest.approx(0.25)
    assert audio.rms() == pytest.approx(0.3 / np.sqrt(2), rel=0.02)
    assert [f.timestamp for f in frames[:3]] == pytest.approx([0.0, 0.02, 0.04])
    assert tts.texts == ["x" * 25]
    assert tts.calls[0].finished
    assert tts.calls[0].seconds_sent == pytest.approx(0.25)


async def test_frames_continue_the_phase_of_one_signal() -> None:
    frames = await synthesize(FakeTTS(seconds_per_call=0.1), "anything")
    whole = tone(0.1, 24000, frequency=220)
    np.testing.assert_allclose(
        concat_audio(frames).data.astype(int), whole.data.astype(int), atol=1
    )


async def test_fixed_seconds_per_call_and_sample_rate() -> None:
    tts = FakeTTS(seconds_per_call=0.2, sample_rate=16000)
    assert tts.capabilities.sample_rate == 16000
    short, long = await synthesize(tts, "a"), await synthesize(tts, "a much longer text")
    assert sum(f.duration for f in short) == pytest.approx(0.2)
    assert sum(f.duration for f in long) == pytest.approx(0.2)
    assert len(short) == 10


async def test_errors_strike_after_a_number_of_frames_or_for_chosen_texts() -> None:
    tts = FakeTTS(seconds_per_call=0.1, error=RuntimeError("quota"), error_after_frames=2)
    received: list[AudioFrame] = []
    with pytest.raises(RuntimeError, match="quota"):
        await read_into(tts.synthesize("hi"), received)
    assert len(received) == 2

    picky = FakeTTS(
        seconds_per_call=0.04,
        error=lambda text: ValueError("unspeakable") if "bad" in text else None,
    )
    assert len(await synthesize(picky, "good")) == 2
    with pytest.raises(ValueError, match="unspeakable"):
        await synthesize(picky, "bad word")

    late = FakeTTS(seconds_per_call=0.04, error=RuntimeError("at the end"), error_after_frames=9)
    with pytest.raises(RuntimeError, match="at the end"):
        await synthesize(late, "hi")  # fewer frames than that: fails once they are out


async def test_hang_and_early_stop_are_recorded() -> None:
    tts = FakeTTS(hang=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await synthesize(tts, "never")
    assert tts.calls[0].cancelled
    assert tts.calls[0].frames_sent == 0

    stream = FakeTTS(seconds_per_call=1.0).synthesize("stop me")
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]


async def test_first_audio_delay_and_realtime_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)  # as seen by the fake
    await synthesize(FakeTTS(seconds_per_call=0.1, first_audio_delay=0.25), "x")
    assert waits == [0.25]  # then frames as fast as they are read

    waits.clear()
    with monkeypatch.context() as frozen:  # a frozen clock: the reader is instant
        frozen.setattr(asyncio.get_running_loop(), "time", lambda: 100.0)
        await synthesize(FakeTTS(seconds_per_call=0.1, realtime=True), "x")
    # frame n waits until the n frames before it could have played
    assert waits == pytest.approx([0.02, 0.04, 0.06, 0.08])


def test_tone_and_silence_frames_cut_exact_durations() -> None:
    frames = list(tone_frames(0.05, 16000))
    assert [f.samples for f in frames] == [320, 320, 160]
    assert all(not f.data.flags.writeable for f in frames)  # shared, read-only views
    assert [f.rms() for f in silence_frames(0.04, 16000)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="negative"):
        list(tone_frames(-1, 16000))


@pytest.mark.parametrize(
    "frame",
    [
        tone(0.02, 16000),
        tone(0.02, 16000).to_float32(),
        tone(0.02, 16000).to_channels(2),
        AudioFrame.silence(0.02, 16000),
        AudioFrame.silence(0.0, 16000),
    ],
    ids=["int16", "float32", "stereo", "silence", "empty"],
)
def test_level_matches_the_frame_rms(frame: AudioFrame) -> None:
    assert level(frame) == pytest.approx(frame.rms(), abs=1e-6)


def test_fake_vad_detects_loud_audio_with_hysteresis() -> None:
    vad = FakeVAD(options=VADOptions(min_speech=0.06, min_silence=0.1))
    stream = vad.stream()
    events = []
    for frame in [*tone_frames(0.3, 16000), *silence_frames(0.3, 16000)]:
        events.extend(stream.push(frame))
    assert [(e.type, round(e.timestamp, 3)) for e in events] == [
        ("speech_started", 0.0),
        ("speech_ended", 0.3),
    ]
    assert events[1].speech_duration == pytest.approx(0.3)
    assert not stream.speaking


def test_fake_vad_threshold_and_other_rates() -> None:
    vad = FakeVAD(threshold=0.5)  # louder than the tone: never speech
    stream = vad.stream()
    assert not any(stream.push(f) for f in tone_frames(0.5, 16000))
    assert stream.last_probability == pytest.approx(0.21 / 1.0, abs=0.01)

    resampled = FakeVAD().stream()  # 48 kHz input is resampled to the VAD's rate
    events = [e for f in tone_frames(0.3, 48000) for e in resampled.push(f)]
    assert [e.type for e in events] == ["speech_started"]
    with pytest.raises(ValueError, match="threshold"):
        FakeVAD(threshold=0)
