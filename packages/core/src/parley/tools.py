"""Function tools: a plain (async or sync) Python function becomes a tool the model can call.

The JSON schema comes from the function's type hints and docstring (through pydantic).
Arguments from a model are validated; bad arguments raise `ToolArgumentsError`, whose message
is written for the model to read and correct itself.

SKELETON: the helper that owns this module replaces the bodies; signatures are the contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class ToolError(Exception):
    """A tool failed; the message is returned to the model."""


class ToolArgumentsError(ToolError):
    """The model's arguments did not match the tool's schema."""


class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any]
    timeout: float | None

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        raise NotImplementedError

    async def invoke(self, arguments: str | Mapping[str, Any]) -> Any:
        """Validate ``arguments`` (JSON text or a mapping) and call the function."""
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        """OpenAI-style ``{"type": "function", "function": {...}}`` description."""
        raise NotImplementedError


def function_tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Decorator or call: ``function_tool(fn)`` or ``@function_tool(name=...)``."""
    raise NotImplementedError


class ToolRegistry:
    def register(
        self,
        fn: Callable[..., Any] | FunctionTool,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> FunctionTool:
        raise NotImplementedError

    def get(self, name: str) -> FunctionTool | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[FunctionTool]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError
