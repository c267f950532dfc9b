"""Parley plugin `llamacpp`: an offline LLM on llama.cpp, SmolLM2-135M-Instruct by default.

This entry module stays light: it registers the part by import path and exposes the classes
lazily, so listing plugins never imports llama-cpp-python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_llamacpp.llm import LlamaCppLLM

    LLM = LlamaCppLLM

PARLEY_API = 1

__all__ = ["LLM", "PARLEY_API", "LlamaCppLLM"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"LLM": "parley_llamacpp.llm:LlamaCppLLM", "LlamaCppLLM": "parley_llamacpp.llm:LlamaCppLLM"},
)


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "llm",
        "llamacpp",
        "parley_llamacpp.llm:LlamaCppLLM",
        capabilities={"offline": True},
        description="llama.cpp with any GGUF; SmolLM2-135M-Instruct by default (offline)",
        requires=("llama_cpp",),
    )
    # SmolLM2-135M copies its own earlier answers: the zero-key default sends the question alone.
    register.preset("local", "llm", "llamacpp?history_turns=0")
