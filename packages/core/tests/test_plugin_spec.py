"""Spec strings: parsing, value coercion, canonical form and clear errors for bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from parley.plugins import Spec, SpecError, parse_spec
from parley.plugins.spec import coerce_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", Spec("local")),
        ("openai/gpt-4o-mini", Spec("openai", "gpt-4o-mini")),
        ("hf/meta-llama/Llama-3.2-1B", Spec("hf", "meta-llama/Llama-3.2-1B")),
        ("ollama/llama3.1:8b", Spec("ollama", "llama3.1:8b")),
        (
            "deepgram?model=nova-3&interim=true",
            Spec("deepgram", None, {"model": "nova-3", "interim": True}),
        ),
        (
            "openai/gpt-4o?temperature=0.2&max_tokens=256&stream=FALSE",
            Spec("openai", "gpt-4o", {"temperature": 0.2, "max_tokens": 256, "stream": False}),
        ),
        ("x?voice=en%20US&empty=", Spec("x", None, {"voice": "en US", "empty": ""})),
        (
            "x?n=-3&f=1e3&v=1.2.3&s=007a",
            Spec("x", None, {"n": -3, "f": 1000.0, "v": "1.2.3", "s": "007a"}),
        ),
    ],
)
def test_parse_valid_specs(text: str, expected: Spec) -> None:
    assert parse_spec(text) == expected


def test_coerced_types_are_exact() -> None:
    options = parse_spec("x?i=42&f=0.5&t=true&s=hello").options
    assert [type(options[k]) for k in "ifts"] == [int, float, bool, str]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        (" openai", "whitespace"),
        ("openai/gpt 4o", "whitespace"),
        ("openai\t", "whitespace"),
        ("/gpt-4o", "part name before"),
        ("?model=x", "part name before"),
        ("open ai", "whitespace"),
        ("open$ai", "the name 'open$ai'"),
        ("-openai", "the name '-openai'"),
        ("openai/", "the model after '/' is empty"),
        ("openai/gpt-4o/", "empty path segment"),
        ("openai/a//b", "empty path segment"),
        ("openai/gpt*", "the model 'gpt*'"),
        ("openai?", "nothing follows '?'"),
        ("openai?a=1?b=2", "more than one '?'"),
        ("openai?a=1&&b=2", "stray '&'"),
        ("openai?a=1&", "stray '&'"),
        ("openai?flag", "has no '='"),
        ("openai?=1", "empty key"),
        ("openai?1a=1", "not a Python identifier"),
        ("openai?a-b=1", "not a Python identifier"),
        ("openai?a=1&a=2", "given more than once"),
        ("openai?a=x=y", "must be percent-encoded"),
        ("openai?a=%ff", "bad percent-encoded UTF-8"),
        ("openai/gpt-4o?model=gpt-4", "model is given twice"),
    ],
)
def test_bad_specs_raise_clear_errors(text: str, problem: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert problem in message
    assert repr(text) in message  # the message quotes what the user wrote
    assert "NAME[/MODEL]" in message  # and shows the expected form
    assert isinstance(info.value, ValueError)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        parse_spec(42)  # type: ignore[arg-type]


def test_spec_options_are_read_only() -> None:
    spec = parse_spec("x?a=1")
    with pytest.raises(TypeError):
        spec.options["a"] = 2  # type: ignore[index]


def test_merged_over_layers_model_and_options() -> None:
    base = parse_spec("whisper/small?beam=5&lang=en")
    merged = parse_spec("local?lang=de").merged_over(base)
    assert merged == Spec("whisper", "small", {"beam": 5, "lang": "de"})
    assert parse_spec("local/large").merged_over(base).model == "large"


_names = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,10}", fullmatch=True)
_models = st.none() | st.from_regex(
    r"[A-Za-z0-9][A-Za-z0-9_.\-:]{0,8}(/[A-Za-z0-9_.\-]{1,6})?", fullmatch=True
)
_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
_values = (
    st.integers(-1000, 1000)
    | st.booleans()
    | st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
)


@given(name=_names, model=_models, options=st.dictionaries(_keys, _values, max_size=4))
def test_canonical_form_round_trips(
    name: str, model: str | None, options: dict[str, int | bool | str]
) -> None:
    spec = Spec(name, model, options)
    reparsed = parse_spec(str(spec))
    assert reparsed.name == spec.name
    assert reparsed.model == spec.model
    for key, value in options.items():
        # Text that reads as a number or boolean comes back coerced, like any spec text.
        assert reparsed.options[key] == (coerce_value(value) if isinstance(value, str) else value)
