"""Capabilities are declared once: contract fields on the part's class, the rest at registration.

The engine reads a part's contract capabilities from the part (``TTS.capabilities``, a
`parley.tts.TTSCapabilities`; a `parley.stt.BatchSTT`'s ``sample_rate`` and ``languages``), so
that is where a plugin declares them. ``register(capabilities={...})`` holds only facts the
contract has no field for (``offline``, ``api_key``, ``routes``, a license ...), which listing
shows without importing the part; repeating a contract field there is a registration error, so
the two can never disagree. `declared` reads the class when the listing wants the whole picture.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

# The fields of each kind's capabilities dataclass (parley.stt.STTCapabilities, ...), spelled
# out so discovery imports no contract module; test_plugin_capabilities checks they agree.
# "batch" is what a BatchSTT's listing adds (the engine wraps it, see parley.segmenting).
CONTRACT_FIELDS: Mapping[str, frozenset[str]] = {
    "stt": frozenset(
        {"streaming", "interim_results", "turn_detection", "sample_rate", "languages", "batch"}
    ),
    "llm": frozenset({"streaming", "tools", "vision", "context_window"}),
    "tts": frozenset({"streaming", "sample_rate", "channels", "languages"}),
    "realtime": frozenset(
        {"input_sample_rate", "output_sample_rate", "video", "server_vad", "tools"}
    ),
    "vad": frozenset({"sample_rate", "window_duration"}),
    "edge": frozenset({"audio_in", "audio_out", "video_in", "data", "output_sample_rate"}),
    "turn": frozenset(),
    "store": frozenset(),
}

# Where each kind's capabilities dataclass lives, for the message that says where to declare.
CONTRACT_CLASSES: Mapping[str, str] = {
    "stt": "parley.stt.STTCapabilities (or BatchSTT.sample_rate/languages)",
    "llm": "parley.llm.LLMCapabilities",
    "tts": "parley.tts.TTSCapabilities",
    "realtime": "parley.realtime.RealtimeCapabilities",
    "vad": "parley.vad.VADCapabilities",
    "edge": "parley.edge.EdgeCapabilities",
}


def contract_keys(kind: str, capabilities: Mapping[str, Any]) -> list[str]:
    """The keys of ``capabilities`` that the ``kind`` contract declares on the part's class."""
    fields = CONTRACT_FIELDS.get(kind, frozenset())
    return sorted(key for key in capabilities if key in fields)


def declared(kind: str, factory: object) -> dict[str, Any] | None:
    """The contract capabilities ``factory`` (a part class) declares, JSON-ready; None when it
    declares none that can be read without building it (e.g. a factory function)."""
    if kind == "stt" and _is_batch_stt(factory):
        return {
            "streaming": False,
            "batch": True,
            "sample_rate": getattr(factory, "sample_rate", None),
            "languages": list(getattr(factory, "languages", ())),
        }
    value = getattr(factory, "capabilities", None)
    if value is None or not dataclasses.is_dataclass(value) or isinstance(value, type):
        return None
    return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _is_batch_stt(factory: object) -> bool:
    stt = sys.modules.get("parley.stt")  # a BatchSTT subclass has imported it already
    batch = getattr(stt, "BatchSTT", None)
    return isinstance(factory, type) and batch is not None and issubclass(factory, batch)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
