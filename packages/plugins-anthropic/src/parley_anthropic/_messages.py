"""Core's `ChatContext` and tools in the Messages API's shape."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from typing import Any

from parley.chat import ChatContext, ChatMessage
from parley.tools import FunctionTool

logger = logging.getLogger("parley.anthropic")

# Appended to an assistant message the user cut off, so the model knows the rest went unheard.
INTERRUPTED_MARK = "…"


def to_system(ctx: ChatContext) -> str:
    """The system prompt: every system message, in order (the API takes it apart)."""
    return "\n\n".join(m.content.strip() for m in ctx if m.role == "system" and m.content.strip())


def to_messages(ctx: ChatContext) -> list[dict[str, Any]]:
    """User and assistant turns of content blocks.

    Tool calls become ``tool_use`` blocks of the assistant turn; their results become
    ``tool_result`` blocks of the next user turn. Consecutive turns of one role are merged
    (the API wants them alternating) and empty text is left out (the API rejects it).
    """
    messages: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for m in ctx:
        if m.images:
            warn_images_dropped()
        if m.role == "user":
            add("user", _text(m.content))
        elif m.role == "assistant":
            add("assistant", _text(heard_text(m)) + [_tool_use(call) for call in m.tool_calls])
        elif m.role == "tool":
            if m.tool_call_id is None:
                raise ValueError(
                    f"tool message {m.id} has no tool_call_id; every tool result must name "
                    "the call it answers"
                )
            add(
                "user",
                [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}],
            )
    return messages


def to_tools(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        for tool in tools
    ]


def heard_text(message: ChatMessage) -> str:
    # No trailing whitespace: the API rejects a final assistant turn that ends with it.
    text = message.content.rstrip()
    return text + INTERRUPTED_MARK if message.interrupted and text else text


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _tool_use(call: Any) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = {}  # the model's malformed JSON; its tool result already says so
    if not isinstance(arguments, dict):
        arguments = {}
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


@functools.cache
def warn_images_dropped() -> None:
    """Said once per process: images on user messages are not sent (no vision support yet)."""
    logger.warning(
        "parley-anthropic does not send images yet; the images on user messages are left out"
    )
