"""Parley plugin ``deepgram``: Deepgram streaming speech-to-text and text-to-speech.

This module stays light: it registers the parts; websockets and httpx load when a part is
built. ``from parley.plugins import deepgram; stt = deepgram.STT(); tts = deepgram.TTS()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_deepgram.errors import DeepgramError
    from parley_deepgram.stt import DeepgramSTT, DeepgramSTTStream
    from parley_deepgram.tts import DeepgramTTS

    STT = DeepgramSTT
    TTS = DeepgramTTS

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DeepgramSTT": "parley_deepgram.stt:DeepgramSTT",
        "DeepgramSTTStream": "parley_deepgram.stt:DeepgramSTTStream",
        "STT": "parley_deepgram.stt:DeepgramSTT",
        "DeepgramTTS": "parley_deepgram.tts:DeepgramTTS",
        "TTS": "parley_deepgram.tts:DeepgramTTS",
        "DeepgramError": "parley_deepgram.errors:DeepgramError",
    },
)

__all__ = [
    "PARLEY_API",
    "STT",
    "TTS",
    "DeepgramError",
    "DeepgramSTT",
    "DeepgramSTTStream",
    "DeepgramTTS",
    "register_parts",
]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "stt",
        "deepgram",
        "parley_deepgram.stt:DeepgramSTT",
        capabilities={"eager_turn_detection": True, "api_key": "DEEPGRAM_API_KEY"},
        description="Deepgram live transcription (Nova over /v1/listen, Flux over /v2/listen)",
        requires=("websockets",),
    )
    register(
        "tts",
        "deepgram",
        "parley_deepgram.tts:DeepgramTTS",
        capabilities={"api_key": "DEEPGRAM_API_KEY"},
        description="Deepgram Aura text-to-speech, streamed linear16 over HTTP",
        requires=("httpx",),
    )
