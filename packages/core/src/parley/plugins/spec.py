"""Spec strings: the short text form of a part, such as ``"openai/gpt-4o-mini"``.

Grammar: ``NAME[/MODEL][?KEY=VALUE[&KEY=VALUE...]]``.

- ``NAME`` is a part or preset name: a letter or digit, then letters, digits, ``_ . -``.
- ``MODEL`` may hold ``/`` and ``:`` too (``meta-llama/Llama-3-8B``, ``llama3.1:8b``).
- ``KEY`` is a Python identifier (it becomes a keyword argument of the part's factory);
  ``VALUE`` is percent-decoded and coerced: integers, floats, ``true``/``false``, else text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote, unquote

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_NAME = re.compile(NAME_PATTERN)
_MODEL = re.compile(r"[A-Za-z0-9_.\-:/@+]+")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VALUE = re.compile(r"[A-Za-z0-9_.\-:/@+,%~]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")

Value = int | float | bool | str


class SpecError(ValueError):
    """A spec string is malformed. The message quotes the spec and says what to write instead."""

    def __init__(self, spec: str, problem: str) -> None:
        super().__init__(
            f"invalid part spec {spec!r}: {problem}. "
            "Expected NAME[/MODEL][?KEY=VALUE&...], e.g. 'openai/gpt-4o-mini' or "
            "'deepgram?model=nova-3&interim=true'"
        )
        self.spec = spec
        self.problem = problem


@dataclass(frozen=True)
class Spec:
    """A parsed spec string. ``str(spec)`` gives back a canonical spec string."""

    name: str
    model: str | None = None
    options: Mapping[str, Value] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        # Freeze the options so a shared Spec (e.g. a preset's) cannot be changed by a caller.
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def merged_over(self, base: Spec) -> Spec:
        """This spec's model and options layered on top of ``base`` (used to follow presets)."""
        return Spec(
            name=base.name,
            model=self.model if self.model is not None else base.model,
            options={**base.options, **self.options},
        )

    def __str__(self) -> str:
        text = self.name if self.model is None else f"{self.name}/{self.model}"
        if self.options:
            text += "?" + "&".join(f"{key}={_render(value)}" for key, value in self.options.items())
        return text


def is_valid_name(name: str) -> bool:
    """Whether ``name`` may be used as a part or preset name."""
    return _NAME.fullmatch(name) is not None


def parse_spec(text: str) -> Spec:
    """Parse a spec string into a `Spec`; raise `SpecError` saying what is wrong."""
    if not isinstance(text, str):
        raise TypeError(f"a part spec must be a string, got {type(text).__name__}")
    if not text:
        raise SpecError(text, "it is empty")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise SpecError(text, "it contains whitespace (percent-encode spaces in values as %20)")

    head, has_query, query = text.partition("?")
    name, has_model, model = head.partition("/")
    if not name:
        raise SpecError(text, "the part name before '/' or '?' is missing")
    if not _NAME.fullmatch(name):
        raise SpecError(
            text,
            f"the name {name!r} has characters other than letters, digits, '_', '.', '-' "
            "or does not start with a letter or digit",
        )
    if has_model and not model:
        raise SpecError(text, "the model after '/' is empty")
    if has_model and not _MODEL.fullmatch(model):
        raise SpecError(text, f"the model {model!r} has characters that are not allowed")
    if has_model and ("//" in model or model.endswith("/")):
        raise SpecError(text, f"the model {model!r} has an empty path segment")

    options: dict[str, Value] = {}
    if has_query:
        options = _parse_query(text, query)
        if has_model and "model" in options:
            raise SpecError(text, "the model is given twice (after '/' and as ?model=)")
    return Spec(name=name, model=model or None, options=options)


def _parse_query(text: str, query: str) -> dict[str, Value]:
    if not query:
        raise SpecError(text, "nothing follows '?'")
    if "?" in query:
        raise SpecError(text, "it has more than one '?'")
    options: dict[str, Value] = {}
    for pair in query.split("&"):
        if not pair:
            raise SpecError(text, "it has an empty option (a stray '&')")
        key, has_equals, raw = pair.partition("=")
        if not has_equals:
            raise SpecError(text, f"the option {pair!r} has no '=' (write {pair}=VALUE)")
        if not key:
            raise SpecError(text, f"the option {pair!r} has an empty key")
        if not _KEY.fullmatch(key):
            raise SpecError(text, f"the option key {key!r} is not a Python identifier")
        if key in options:
            raise SpecError(text, f"the option {key!r} is given more than once")
        if not _VALUE.fullmatch(raw):
            raise SpecError(
                text, f"the value of {key!r} has characters that must be percent-encoded"
            )
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise SpecError(text, f"the value of {key!r} is bad percent-encoded UTF-8") from None
        options[key] = coerce_value(decoded)
    return options


def coerce_value(raw: str) -> Value:
    """Turn option text into the value a factory expects: int, float, bool, else the text."""
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        return float(raw)
    lowered = raw.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return raw


def _render(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe="_.-:/@+,~")
