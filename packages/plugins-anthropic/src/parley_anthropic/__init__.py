"""Parley plugin ``anthropic``: Claude as a streaming LLM with tools.

This module stays light: it registers the part; the ``anthropic`` SDK is imported when the
part is built. ``from parley.plugins import anthropic; llm = anthropic.LLM()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_anthropic.llm import AnthropicLLM, MissingAPIKey

    LLM = AnthropicLLM

PARLEY_API = 1

_LAZY = {
    "LLM": "parley_anthropic.llm:AnthropicLLM",
    "AnthropicLLM": "parley_anthropic.llm:AnthropicLLM",
    "MissingAPIKey": "parley_anthropic.llm:MissingAPIKey",
}

__all__ = ["LLM", "PARLEY_API", "AnthropicLLM", "MissingAPIKey", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "llm",
        "anthropic",
        "parley_anthropic.llm:AnthropicLLM",
        capabilities={"streaming": True, "tools": True},
        description="Anthropic Claude through the streaming Messages API, with tools",
        requires=("anthropic",),
    )


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
