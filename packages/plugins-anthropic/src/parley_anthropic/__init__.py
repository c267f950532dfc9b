"""Parley plugin ``anthropic``: Claude as a streaming LLM with tools.

This module stays light: it registers the part; the ``anthropic`` SDK is imported when the
part is built. ``from parley.plugins import anthropic; llm = anthropic.LLM()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar
    from parley.providers import MissingAPIKey

    from parley_anthropic.llm import AnthropicLLM

    LLM = AnthropicLLM

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "LLM": "parley_anthropic.llm:AnthropicLLM",
        "AnthropicLLM": "parley_anthropic.llm:AnthropicLLM",
        "MissingAPIKey": "parley.providers:MissingAPIKey",
    },
)

__all__ = ["LLM", "PARLEY_API", "AnthropicLLM", "MissingAPIKey", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "llm",
        "anthropic",
        "parley_anthropic.llm:AnthropicLLM",
        description="Anthropic Claude through the streaming Messages API, with tools",
        requires=("anthropic",),
    )
