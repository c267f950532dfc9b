"""Core's `ChatContext` and tools in OpenAI's wire formats: Chat Completions and Realtime."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from parley.chat import ChatContext, ChatMessage
from parley.tools import FunctionTool

logger = logging.getLogger("parley.openai")

# Appended to an assistant message the user cut off, so the model knows the rest went unheard.
INTERRUPTED_MARK = "…"


def heard_text(message: ChatMessage) -> str:
    """An assistant message's text as the user heard it."""
    text = message.content.rstrip()
    if message.interrupted and text:
        return text + INTERRUPTED_MARK
    return text


def to_messages(ctx: ChatContext) -> list[dict[str, Any]]:
    """Chat Completions ``messages``: system, user, assistant (with ``tool_calls``) and tool
    results. An assistant message with neither text nor tool calls is left out (the API
    rejects it); so is an empty user message."""
    messages: list[dict[str, Any]] = []
    for m in ctx:
        if m.images:
            warn_images_dropped()
        if m.role in ("system", "user"):
            if m.content or m.role == "system":
                messages.append({"role": m.role, "content": m.content})
        elif m.role == "assistant":
            text = heard_text(m)
            if not text and not m.tool_calls:
                continue
            item: dict[str, Any] = {"role": "assistant", "content": text or None}
            if m.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments or "{}"},
                    }
                    for call in m.tool_calls
                ]
            messages.append(item)
        elif m.role == "tool":
            if m.tool_call_id is None:
                raise ValueError(
                    f"tool message {m.id} has no tool_call_id; every tool result must name "
                    "the call it answers"
                )
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
    return messages


# --- Realtime API ---------------------------------------------------------------------------


def realtime_tools(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    """Tools in the Realtime session format (flat, unlike Chat Completions' nested one)."""
    return [
        {
            "type": "function",
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.schema()["function"]["parameters"],
        }
        for tool in tools
    ]


def realtime_items(ctx: ChatContext, instructions: str) -> list[dict[str, Any]]:
    """Conversation items that prime a Realtime session with earlier history.

    The session's ``instructions`` already carry the system prompt, so a system message that
    repeats them is left out.
    """
    items: list[dict[str, Any]] = []
    for m in ctx:
        if m.role == "system":
            if m.content and m.content != instructions:
                items.append(_message_item("system", "input_text", m.content))
        elif m.role == "user":
            if m.content:
                items.append(_message_item("user", "input_text", m.content))
        elif m.role == "assistant":
            text = heard_text(m)
            if text:
                items.append(_message_item("assistant", "output_text", text))
            items.extend(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments or "{}",
                }
                for call in m.tool_calls
            )
        elif m.role == "tool" and m.tool_call_id is not None:
            items.append(
                {"type": "function_call_output", "call_id": m.tool_call_id, "output": m.content}
            )
    return items


def _message_item(role: str, content_type: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


@functools.cache
def warn_images_dropped() -> None:
    """Said once per process: images on user messages are not sent (no vision support yet)."""
    logger.warning(
        "parley-openai does not send images yet; the images on user messages are left out"
    )
