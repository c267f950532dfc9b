"""Parley plugin ``elevenlabs``: ElevenLabs streaming text-to-speech.

This module stays light: it registers the part; websockets and httpx load when it is built.
``from parley.plugins import elevenlabs; tts = elevenlabs.TTS(voice="JBFqnCBsd6RMkjVDRZzb")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_elevenlabs.errors import ElevenLabsError
    from parley_elevenlabs.tts import ElevenLabsTTS

    TTS = ElevenLabsTTS

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ElevenLabsTTS": "parley_elevenlabs.tts:ElevenLabsTTS",
        "TTS": "parley_elevenlabs.tts:ElevenLabsTTS",
        "ElevenLabsError": "parley_elevenlabs.errors:ElevenLabsError",
    },
)

__all__ = ["PARLEY_API", "TTS", "ElevenLabsError", "ElevenLabsTTS", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "tts",
        "elevenlabs",
        "parley_elevenlabs.tts:ElevenLabsTTS",
        capabilities={"transports": ["websocket", "http"], "api_key": "ELEVENLABS_API_KEY"},
        description="ElevenLabs text-to-speech over the stream-input WebSocket, HTTP fallback",
        requires=("websockets", "httpx"),
    )
