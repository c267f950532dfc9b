"""The conversation history that core owns and every LLM reads.

Providers translate a `ChatContext` to their wire format; they never keep history of their own.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete call the model asked for. ``arguments`` is the model's JSON text, unparsed."""

    name: str
    arguments: str
    id: str = field(default_factory=lambda: _next_id("call"))


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # for role "tool": which call this answers
    name: str | None = None  # for role "tool": the tool's name
    interrupted: bool = False  # an assistant message cut off by the user; content is what was heard
    images: list[Any] = field(default_factory=list)  # VideoFrames attached to a user message
    id: str = field(default_factory=lambda: _next_id("msg"))


class ChatContext:
    """An ordered list of messages with helpers that keep tool calls and results paired."""

    def __init__(self, messages: Iterable[ChatMessage] = ()) -> None:
        self.messages: list[ChatMessage] = list(messages)

    def __iter__(self) -> Iterator[ChatMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __repr__(self) -> str:
        return f"ChatContext({len(self.messages)} messages)"

    def add(self, role: Role, content: str = "", **fields: Any) -> ChatMessage:
        message = ChatMessage(role=role, content=content, **fields)
        self.messages.append(message)
        return message

    def add_message(self, message: ChatMessage) -> ChatMessage:
        self.messages.append(message)
        return message

    def copy(self) -> ChatContext:
        """A new list over the same messages: adding or removing messages in the copy leaves
        this context alone (cheap: the engine takes one per LLM call). Use `deepcopy` to
        also edit messages in place."""
        return ChatContext(self.messages)

    def deepcopy(self) -> ChatContext:
        return ChatContext(copy.deepcopy(self.messages))

    def last(self, role: Role | None = None) -> ChatMessage | None:
        for message in reversed(self.messages):
            if role is None or message.role == role:
                return message
        return None

    def set_instructions(self, instructions: str) -> None:
        """Make ``instructions`` the first system message, replacing an earlier one."""
        if self.messages and self.messages[0].role == "system":
            self.messages[0].content = instructions
        else:
            self.messages.insert(0, ChatMessage(role="system", content=instructions))

    def truncate(self, max_messages: int) -> None:
        """Keep the system message and the newest ``max_messages`` others.

        Never starts the kept window on a tool result or on an assistant message whose tool
        results would be cut away: providers reject a result without its call.
        """
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        head = [m for m in self.messages[:1] if m.role == "system"]
        rest = self.messages[len(head) :]
        if len(rest) <= max_messages:
            return
        kept = rest[-max_messages:]
        while kept and kept[0].role == "tool":
            kept = kept[1:]
        self.messages = head + kept

    def to_dicts(self) -> list[dict[str, Any]]:
        """OpenAI-style message dicts; a convenient base for providers' own formats."""
        out: list[dict[str, Any]] = []
        for m in self.messages:
            item: dict[str, Any] = {"role": m.role, "content": m.content}
            if m.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in m.tool_calls
                ]
            if m.tool_call_id is not None:
                item["tool_call_id"] = m.tool_call_id
            if m.name is not None and m.role == "tool":
                item["name"] = m.name
            out.append(item)
        return out
