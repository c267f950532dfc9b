"""VADSegmentedSTT with an energy VAD and a recording batch recognizer (both fakes)."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import numpy.typing as npt
import pytest
from parley.frames import AudioFrame
from parley.segmenting import VADSegmentedSTT
from parley.stt import STT, BatchSTT, STTEvent, STTStream
from parley.vad import VAD, ProbabilityVADStream, VADCapabilities, VADOptions, VADStream

RATE = 16000
TONE_LEVEL = 0.3
FRAME = 0.02  # seconds per pushed frame


class EnergyVADStream(ProbabilityVADStream):
    def probability(self, window: npt.NDArray[np.float32]) -> float:
        return 1.0 if float(np.sqrt(np.mean(np.square(window)))) > 0.01 else 0.0


class EnergyVAD(VAD):
    def stream(self) -> VADStream:
        return EnergyVADStream(self.capabilities, self.options)


class LaggingVADStream(ProbabilityVADStream):
    """As Silero does: the probability stays high for ``TAIL`` seconds after the sound stops."""

    TAIL = 0.16

    def __init__(self, capabilities: VADCapabilities, options: VADOptions) -> None:
        super().__init__(capabilities, options)
        self._window_seconds = capabilities.window_duration
        self._since_loud = float("inf")

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        loud = float(np.sqrt(np.mean(np.square(window)))) > 0.001  # hears "soft" tone too
        self._since_loud = 0.0 if loud else self._since_loud + self._window_seconds
        return 1.0 if self._since_loud <= self.TAIL else 0.0


class LaggingVAD(VAD):
    def __init__(self, options: VADOptions) -> None:
        self.options = options

    def stream(self) -> VADStream:
        return LaggingVADStream(self.capabilities, self.options)


def loud_seconds(audio: AudioFrame) -> float:
    """Seconds of tone in ``audio``, counted in 10 ms blocks."""
    block = audio.sample_rate // 100
    data = audio.to_float32().data[: audio.samples // block * block, 0].reshape(-1, block)
    return float(np.count_nonzero(np.sqrt(np.mean(np.square(data), axis=1)) > 0.05)) / 100


class RecordingSTT(BatchSTT):
    """Answers with how much tone a segment holds, so assertions check the audio it got."""

    def __init__(self) -> None:
        self.segments: list[AudioFrame] = []
        self.closed = False

    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        self.segments.append(audio)
        return f"tone {loud_seconds(audio):.1f}s"

    async def aclose(self) -> None:
        self.closed = True


class GatedSTT(RecordingSTT):
    """Holds each recognition until the test opens its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[asyncio.Event] = []
        self.cancelled = 0

    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        gate = asyncio.Event()
        self.gates.append(gate)
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return await super().recognize(audio, language=language)


def signal(layout: list[tuple[str, float]], rate: int = RATE) -> npt.NDArray[np.float32]:
    """``("tone" | "soft" | "silence", seconds)`` pieces joined into one float32 signal."""
    parts = []
    for kind, seconds in layout:
        t = np.arange(round(seconds * rate)) / rate
        level = {"tone": TONE_LEVEL, "soft": TONE_LEVEL / 100}.get(kind, 0.0)  # soft: -40 dB
        parts.append((level * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return np.concatenate(parts)


async def push_signal(
    stream: STTStream, samples: npt.NDArray[np.float32], rate: int = RATE
) -> None:
    step = round(FRAME * rate)
    for i in range(0, len(samples), step):
        frame = AudioFrame(samples[i : i + step], rate).to_int16()
        await asyncio.wait_for(stream.push(frame), timeout=5)


async def collect(stream: STTStream, *, partials: bool = False) -> list[STTEvent]:
    """Every event of ``stream`` (early ``partial`` guesses only if asked)."""
    return [e async for e in stream if partials or e.type != "partial"]


async def run(
    stt: STT, samples: npt.NDArray[np.float32], *, partials: bool = False
) -> list[STTEvent]:
    """Events of one stream over ``samples`` (early ``partial`` guesses only if asked)."""
    stream = stt.stream()
    reader = asyncio.create_task(collect(stream, partials=partials))
    await push_signal(stream, samples)
    await stream.flush()
    await stream.aclose()
    return await reader


async def test_each_utterance_gives_speech_started_then_final() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD())
    layout = [("silence", 1.0), ("tone", 1.0), ("silence", 1.0), ("tone", 0.6), ("silence", 1.0)]
    events = await run(stt, signal(layout))

    assert [e.type for e in events] == ["speech_started", "final", "speech_started", "final"]
    assert [e.text for e in events if e.type == "final"] == ["tone 1.0s", "tone 0.6s"]
    for event, segment in zip(
        [e for e in events if e.type == "final"], batch.segments, strict=True
    ):
        assert event.audio_duration == pytest.approx(segment.duration)
        assert segment.sample_rate == RATE and segment.channels == 1


async def test_segment_keeps_the_pre_roll_before_speech() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD(), pre_roll=0.25, speculate=False)
    await run(stt, signal([("silence", 1.0), ("tone", 0.8), ("silence", 1.0)]))

    [segment] = batch.segments
    assert segment.timestamp == pytest.approx(1.0 - 0.25, abs=0.033)
    loud = np.flatnonzero(np.abs(segment.to_float32().data[:, 0]) > 0.05)
    assert loud[0] / RATE == pytest.approx(0.25, abs=0.033)  # tone starts after the pre-roll
    # Ends after the VAD's silence hangover, not later than the signal allows.
    assert segment.timestamp + segment.duration >= 1.8 + stt.vad.options.min_silence - 0.04


async def test_speculation_recognizes_during_the_silence_wait() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD())
    events = await run(
        stt, signal([("silence", 1.0), ("tone", 0.8), ("silence", 1.0)]), partials=True
    )
    # the guess is published as soon as it is ready, then confirmed as the final
    assert [e.type for e in events] == ["speech_started", "partial", "final"]
    assert events[1].text == events[2].text
    [segment] = batch.segments
    # recognized as soon as the speech went quiet, not after the VAD's silence hangover
    end = segment.timestamp + segment.duration
    assert 1.8 <= end < 1.8 + stt.vad.options.min_silence
    assert events[2].audio_duration == pytest.approx(segment.duration)


@pytest.mark.parametrize("pause_below_peak_db", [30.0, None])
async def test_a_quiet_window_starts_the_guess_before_the_probability_falls(
    pause_below_peak_db: float | None,
) -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, LaggingVAD(VADOptions(pause_below_peak_db=pause_below_peak_db)))
    events = await run(
        stt, signal([("silence", 1.0), ("tone", 0.8), ("silence", 1.0)]), partials=True
    )
    assert [e.type for e in events] == ["speech_started", "partial", "final"]
    [segment] = batch.segments  # one recognition: the guess became the final
    end = segment.timestamp + segment.duration
    if pause_below_peak_db is not None:  # by energy: at the first quiet window
        assert 1.8 <= end < 1.8 + 0.07
    else:  # by probability only: after the model's tail
        assert end >= 1.8 + LaggingVADStream.TAIL


async def test_soft_speech_after_loud_speech_is_not_taken_for_a_pause() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, LaggingVAD(VADOptions(pause_below_peak_db=30.0)))
    layout = [("silence", 1.0), ("tone", 0.8), ("soft", 0.6), ("silence", 1.0)]
    events = await run(stt, signal(layout))
    assert [e.type for e in events] == ["speech_started", "final"]
    final = batch.segments[-1]
    # The guess made when the loud part ended was dropped: the final holds the soft part too.
    assert final.timestamp + final.duration >= 1.8 + 0.6


async def test_a_pause_inside_speech_drops_the_guess() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD())
    layout = [("silence", 1.0), ("tone", 0.6), ("silence", 0.15), ("tone", 0.6), ("silence", 1.0)]
    events = await run(stt, signal(layout))
    assert [e.type for e in events] == ["speech_started", "final"]
    final_segment = batch.segments[-1]
    # the used recognition covers both parts of the utterance
    assert final_segment.timestamp + final_segment.duration >= 1.0 + 0.6 + 0.15 + 0.6


async def test_recognition_does_not_block_pushing_and_finals_keep_order() -> None:
    batch = GatedSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD())
    stream = stt.stream()
    reader = asyncio.create_task(collect(stream))
    layout = [("silence", 0.5), ("tone", 0.7), ("silence", 0.6), ("tone", 0.4), ("silence", 0.6)]

    # Every push returns although no recognition has finished (wait_for inside would fail).
    await push_signal(stream, signal(layout))
    await asyncio.sleep(0)
    assert len(batch.gates) == 2  # both segments are being recognized at once
    batch.gates[1].set()  # the second finishes first…
    await asyncio.sleep(0.05)
    batch.gates[0].set()
    await stream.flush()
    await stream.aclose()
    events = await reader

    # …but the finals come out in speaking order.
    assert [(e.type, e.text) for e in events] == [
        ("speech_started", ""),
        ("final", "tone 0.7s"),
        ("speech_started", ""),
        ("final", "tone 0.4s"),
    ]


async def test_flush_recognizes_buffered_speech_and_starts_a_new_segment() -> None:
    batch = RecordingSTT()
    stream = VADSegmentedSTT(batch, EnergyVAD()).stream()
    reader = asyncio.create_task(collect(stream))

    await push_signal(stream, signal([("silence", 0.5), ("tone", 0.5)]))
    assert batch.segments == []  # still speaking: nothing recognized yet
    await stream.flush()
    assert len(batch.segments) == 1
    await push_signal(stream, signal([("tone", 0.5), ("silence", 0.6)]))
    await stream.flush()
    await stream.aclose()
    events = await reader

    assert [e.type for e in events] == ["speech_started", "final", "speech_started", "final"]
    assert [e.text for e in events if e.type == "final"] == ["tone 0.5s", "tone 0.5s"]


async def test_long_speech_is_cut_at_max_segment() -> None:
    batch = RecordingSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD(), max_segment=1.0)
    events = await run(stt, signal([("silence", 0.5), ("tone", 2.2), ("silence", 0.6)]))

    # 0.2 s pre-roll + 2.2 s tone + the VAD's 0.32 s hangover: three pieces of at most 1 s.
    assert [e.type for e in events] == ["speech_started", "final", "final", "final"]
    assert all(segment.duration <= 1.0 + FRAME for segment in batch.segments)
    assert sum(loud_seconds(s) for s in batch.segments) == pytest.approx(2.2, abs=0.011)


async def test_failed_recognition_is_logged_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FlakySTT(RecordingSTT):
        async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
            if not self.segments:
                self.segments.append(audio)
                raise ConnectionError("recognizer unavailable")
            return await super().recognize(audio, language=language)

    stt = VADSegmentedSTT(FlakySTT(), EnergyVAD())
    layout = [("silence", 0.5), ("tone", 0.5), ("silence", 0.6), ("tone", 0.3), ("silence", 0.6)]
    with caplog.at_level(logging.ERROR, logger="parley.segmenting"):
        events = await run(stt, signal(layout))

    assert [e.text for e in events if e.type == "final"] == ["tone 0.3s"]
    assert "speech recognition failed" in caplog.text
    assert "recognizer unavailable" in caplog.text


async def test_frames_at_other_rates_are_converted_for_the_recognizer() -> None:
    batch = RecordingSTT()
    stream = VADSegmentedSTT(batch, EnergyVAD()).stream()
    reader = asyncio.create_task(collect(stream))
    mono = signal([("silence", 0.5), ("tone", 0.6), ("silence", 0.6)], rate=48000)
    stereo = np.stack([mono, mono], axis=1)
    step = round(FRAME * 48000)
    for i in range(0, len(stereo), step):
        await stream.push(AudioFrame(stereo[i : i + step], 48000))
    await stream.flush()
    await stream.aclose()
    events = await reader

    [segment] = batch.segments
    assert (segment.sample_rate, segment.channels) == (RATE, 1)
    assert [e.text for e in events if e.type == "final"] == ["tone 0.6s"]


async def test_aclose_cancels_pending_recognition() -> None:
    batch = GatedSTT()
    stt = VADSegmentedSTT(batch, EnergyVAD())
    stream = stt.stream()
    reader = asyncio.create_task(collect(stream))
    await push_signal(stream, signal([("silence", 0.5), ("tone", 0.5), ("silence", 0.6)]))
    await asyncio.sleep(0)
    assert len(batch.gates) == 1

    await stream.aclose()
    events = await reader
    assert batch.cancelled == 1
    assert [e.type for e in events] == ["speech_started"]
    with pytest.raises(RuntimeError, match="closed"):
        await stream.push(AudioFrame.silence(0.02, RATE))
    await stt.aclose()
    assert batch.closed
