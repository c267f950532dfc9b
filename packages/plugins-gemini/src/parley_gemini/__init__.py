"""Parley plugin ``gemini``: Google Gemini as an LLM and as a realtime (Live) model.

This module stays light: it registers the parts; httpx, websockets and Pillow load when a part
is built. ``from parley.plugins import gemini; llm = gemini.LLM("gemini-2.5-flash")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_gemini.errors import GeminiError
    from parley_gemini.live import GeminiLive, GeminiLiveSession
    from parley_gemini.llm import GeminiLLM

    LLM = GeminiLLM
    Realtime = GeminiLive
    Live = GeminiLive

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "GeminiLLM": "parley_gemini.llm:GeminiLLM",
        "LLM": "parley_gemini.llm:GeminiLLM",
        "GeminiLive": "parley_gemini.live:GeminiLive",
        "GeminiLiveSession": "parley_gemini.live:GeminiLiveSession",
        "Live": "parley_gemini.live:GeminiLive",
        "Realtime": "parley_gemini.live:GeminiLive",
        "GeminiError": "parley_gemini.errors:GeminiError",
    },
)

__all__ = [
    "LLM",
    "PARLEY_API",
    "GeminiError",
    "GeminiLLM",
    "GeminiLive",
    "GeminiLiveSession",
    "Live",
    "Realtime",
    "register_parts",
]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "llm",
        "gemini",
        "parley_gemini.llm:GeminiLLM",
        capabilities={"api_key": "GEMINI_API_KEY"},
        description="Google Gemini (streamGenerateContent with function calling)",
        requires=("httpx", "PIL"),
    )
    register(
        "realtime",
        "gemini",
        "parley_gemini.live:GeminiLive",
        capabilities={"api_key": "GEMINI_API_KEY"},
        description="Gemini Live (BidiGenerateContent WebSocket): audio and video in, audio out",
        requires=("websockets", "PIL"),
    )
