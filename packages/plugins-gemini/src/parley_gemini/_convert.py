"""Core's `ChatContext`, tools and frames in Gemini's wire format (REST and Live share it)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from parley.chat import ChatContext, ChatMessage
from parley.frames import VideoFrame
from parley.tools import FunctionTool

# The OpenAPI subset Gemini's `Schema` accepts; anything else (titles, $defs, defaults,
# additionalProperties, ...) is dropped after references are inlined.
_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "anyOf",
        "propertyOrdering",
    }
)


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON schema (as pydantic makes it) as a Gemini `Schema`."""
    return _schema(schema, schema.get("$defs", {}), 0)


def _schema(node: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    if depth > 32:
        raise ValueError("tool schema nests too deeply (a recursive type?) for Gemini")
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if target is None:
            raise ValueError(f"tool schema reference {ref!r} cannot be resolved")
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _schema(merged, defs, depth + 1)
    options = node.get("anyOf")
    if isinstance(options, list):
        # Optional[X] is anyOf [X, null]: Gemini spells it X with nullable.
        kept = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if len(kept) == 1 and len(kept) < len(options):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            inner = _schema({**kept[0], **rest}, defs, depth + 1)
            inner["nullable"] = True
            return inner
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _schema(value, defs, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_schema(sub, defs, depth + 1) for sub in value if isinstance(sub, Mapping)]
        elif key == "type" and isinstance(value, list):  # ["string", "null"]
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if types else "string"
            if len(types) < len(value):
                out["nullable"] = True
        else:
            out[key] = value
    if out.get("type") == "object" and not out.get("properties"):
        out.pop("properties", None)
        out.pop("required", None)
    return out


def function_declarations(tools: Sequence[FunctionTool]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
        parameters = gemini_schema(tool.parameters)
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations


def jpeg_bytes(frame: VideoFrame, *, quality: int = 80, max_side: int = 1024) -> bytes:
    """Encode a video frame as JPEG (scaled down so its longer side is at most ``max_side``)."""
    from PIL import Image

    modes = {"rgb24": "RGB", "rgba": "RGBA", "gray": "L", "gray8": "L"}
    mode = modes.get(frame.format)
    if mode is None:
        raise ValueError(
            f"cannot send a {frame.format!r} video frame to Gemini; convert it to rgb24 first"
        )
    image = Image.fromarray(frame.data.squeeze() if mode == "L" else frame.data, mode)
    if mode == "RGBA":
        image = image.convert("RGB")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"arguments": text}  # keep what the model wrote rather than drop the call
    return value if isinstance(value, dict) else {"value": value}


def _parts(message: ChatMessage, signatures: Mapping[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"text": message.content})
    for image in message.images:
        if isinstance(image, VideoFrame):
            data = base64.b64encode(jpeg_bytes(image)).decode("ascii")
            parts.append({"inlineData": {"mimeType": "image/jpeg", "data": data}})
    for call in message.tool_calls:
        part: dict[str, Any] = {
            "functionCall": {"name": call.name, "args": _arguments(call.arguments)}
        }
        signature = signatures.get(call.id)
        if signature:
            part["thoughtSignature"] = signature  # Gemini 3 requires it back with the call
        parts.append(part)
    return parts


def contents(
    ctx: ChatContext, signatures: Mapping[str, str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The system instruction and the ``contents`` list for a chat context.

    Tool results become ``functionResponse`` parts of a user turn; consecutive turns of one
    role are merged, since Gemini wants a call's results together in the turn after it.
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in ctx:
        if message.role == "system":
            if message.content:
                system.append(message.content)
            continue
        if message.role == "tool":
            role = "user"
            parts = [
                {
                    "functionResponse": {
                        "name": message.name or "tool",
                        "response": {"result": message.content},
                    }
                }
            ]
        else:
            role = "model" if message.role == "assistant" else "user"
            parts = _parts(message, signatures or {})
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    if out and out[0]["role"] == "model":
        # A conversation the agent opened (a greeting said before the user spoke): Gemini
        # wants the first turn to be the user's, so an empty-handed one goes first.
        out.insert(0, {"role": "user", "parts": [{"text": "."}]})
    return "\n\n".join(system), out
