"""Function tools: schemas from hints and docstrings, argument validation, calling, registry."""

import asyncio
import enum
import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parley.tools import (
    FunctionTool,
    ToolArgumentsError,
    ToolError,
    ToolRegistry,
    function_tool,
)
from pydantic import BaseModel, Field

# --- tools used across tests (module level, as users write them) ---------------------------------


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str = Field(description="City name")
    title: str = "home"  # a property called "title" must survive title stripping


class Order(BaseModel):
    item: str
    quantity: int = 1
    ship_to: Address | None = None


async def get_weather(
    location: str,
    unit: Unit = Unit.CELSIUS,
    days: Optional[int] = None,  # noqa: UP045 - typing.Optional on purpose
    detailed: bool = False,
) -> str:
    """Get the current weather for a location.

    Uses the forecast service.

    Args:
        location: City name,
            for example "Paris".
        unit: Temperature unit.
        days: Days ahead; none for today.
    """
    return f"{location}|{unit.value}|{days}|{detailed}"


def place_order(
    order: Order,
    priority: Literal["low", "normal", "high"] = "normal",
    tags: list[str] | None = None,
    extra: dict[str, float] | None = None,
    ratio: float = 0.5,
    note: Annotated[str, Field(description="Free text for the courier")] = "",
) -> dict[str, Any]:
    """Place an order.

    Parameters
    ----------
    order
        What to order.
    priority
        How urgent it is.
    note
        Docstring text that the Annotated description overrides.
    """
    return {
        "order": order,
        "priority": priority,
        "tags": tags,
        "extra": extra,
        "ratio": ratio,
        "note": note,
    }


def _params(fn: Any) -> dict[str, Any]:
    return FunctionTool(fn).parameters


# --- schemas ------------------------------------------------------------------------------------


def test_schema_from_hints_and_google_docstring() -> None:
    tool = FunctionTool(get_weather)
    assert tool.name == "get_weather"
    assert (
        tool.description == "Get the current weather for a location.\n\nUses the forecast service."
    )
    params = tool.parameters
    assert params["type"] == "object"
    assert params["required"] == ["location"]
    props = params["properties"]
    assert props["location"] == {"type": "string", "description": 'City name, for example "Paris".'}
    assert props["detailed"] == {"type": "boolean", "default": False}
    assert props["days"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert props["days"]["description"] == "Days ahead; none for today."
    assert props["unit"]["default"] == "celsius"
    assert props["unit"]["description"] == "Temperature unit."
    unit_schema = params["$defs"]["Unit"]
    assert unit_schema["enum"] == ["celsius", "fahrenheit"]
    assert props["unit"]["$ref"] == "#/$defs/Unit"


def test_schema_nested_models_literal_containers_and_numpy_docstring() -> None:
    tool = FunctionTool(place_order)
    params = tool.parameters
    assert tool.description == "Place an order."
    assert params["required"] == ["order"]
    props = params["properties"]
    assert props["order"]["$ref"] == "#/$defs/Order"
    assert props["order"]["description"] == "What to order."
    assert props["priority"]["enum"] == ["low", "normal", "high"]
    assert props["priority"]["description"] == "How urgent it is."
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert props["extra"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "number"},
    }
    assert props["ratio"] == {"type": "number", "default": 0.5}
    # An explicit Annotated[..., Field(description=...)] wins over the docstring.
    assert props["note"]["description"] == "Free text for the courier"
    order = params["$defs"]["Order"]
    assert order["required"] == ["item"]
    assert order["properties"]["ship_to"]["anyOf"][0] == {"$ref": "#/$defs/Address"}
    address = params["$defs"]["Address"]
    assert address["description"] == "A postal address."
    assert address["properties"]["city"]["description"] == "City name"
    assert set(address["properties"]) == {"street", "city", "title"}


def test_generated_titles_are_dropped() -> None:
    text = json.dumps(FunctionTool(place_order).parameters)
    schema = FunctionTool(place_order).parameters

    def titles(node: Any) -> list[Any]:
        found = []
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "title" and isinstance(value, str):
                    found.append(value)
                found.extend(titles(value))
        elif isinstance(node, list):
            for value in node:
                found.extend(titles(value))
        return found

    assert titles(schema) == [], text
    assert schema["$defs"]["Address"]["properties"]["title"] == {
        "type": "string",
        "default": "home",
    }


def test_openai_style_schema_and_overrides() -> None:
    tool = FunctionTool(get_weather, name="weather", description="Weather now.")
    assert tool.schema() == {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather now.",
            "parameters": tool.parameters,
        },
    }
    tool.schema()["function"]["parameters"]["properties"].clear()
    assert tool.parameters["properties"], "schema() must hand out a copy"


def test_function_without_parameters_or_docstring() -> None:
    def ping() -> str:
        return "pong"

    tool = FunctionTool(ping)
    assert tool.description == ""
    assert tool.parameters == {"type": "object", "properties": {}}


def test_parameter_names_that_clash_with_pydantic_attributes() -> None:
    def store(json: str, schema: int, model_config: bool = False) -> str:
        return f"{json}:{schema}:{model_config}"

    tool = FunctionTool(store)
    assert set(tool.parameters["properties"]) == {"json", "schema", "model_config"}
    assert asyncio.run(tool.invoke({"json": "a", "schema": 2})) == "a:2:False"


def test_string_annotations_from_a_postponed_module(tmp_path: Path) -> None:
    source = '''
from __future__ import annotations
import enum

class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"

async def react(mood: Mood, loud: bool = False) -> str:
    """React to a mood."""
    return f"{mood.name}:{loud}"
'''
    path = tmp_path / "postponed_tools.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("postponed_tools", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tool = FunctionTool(module.react)
    assert tool.parameters["$defs"]["Mood"]["enum"] == ["happy", "sad"]
    assert asyncio.run(tool.invoke('{"mood": "sad"}')) == "SAD:False"


def test_unusable_signatures_fail_at_registration_with_clear_errors() -> None:
    def star(*items: str) -> None: ...

    def kw(**options: str) -> None: ...

    def positional(x: int, /) -> None: ...

    for fn in (star, kw, positional):
        with pytest.raises(TypeError, match="named parameter"):
            FunctionTool(fn)

    def unresolved(x: "NoSuchType") -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(TypeError, match="cannot resolve a type hint"):
        FunctionTool(unresolved)

    def opaque(lock: threading.Lock) -> None: ...

    with pytest.raises(TypeError, match="opaque: its parameters cannot be described"):
        FunctionTool(opaque)


@pytest.mark.parametrize("name", ["", "has space", "dots.not.allowed", "x" * 65, "ümlaut"])
def test_bad_tool_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="is not allowed"):
        FunctionTool(get_weather, name=name)


def test_unnamed_callable_needs_a_name() -> None:
    class Anonymous:
        def __call__(self, x: int) -> int:
            return x

    with pytest.raises(TypeError, match="pass name="):
        FunctionTool(Anonymous())
    assert FunctionTool(Anonymous(), name="anon").name == "anon"


# --- invoking -----------------------------------------------------------------------------------


async def test_invoke_with_json_text_or_mapping_validates_and_converts() -> None:
    tool = FunctionTool(get_weather)
    assert await tool.invoke('{"location": "Paris"}') == "Paris|celsius|None|False"
    # Lax coercion suits models: "3" becomes 3, the enum value becomes the member.
    assert (
        await tool.invoke({"location": "Oslo", "unit": "fahrenheit", "days": "3"})
        == "Oslo|fahrenheit|3|False"
    )
    # Unknown arguments are ignored rather than failing a voice turn.
    assert await tool.invoke({"location": "Rome", "mood": "sunny"}) == "Rome|celsius|None|False"


async def test_nested_models_reach_the_function_as_models() -> None:
    tool = FunctionTool(place_order)
    args = {
        "order": {"item": "tea", "ship_to": {"street": "1 Main St", "city": "Lyon"}},
        "tags": ["gift"],
    }
    result = await tool.invoke(json.dumps(args))
    assert isinstance(result["order"], Order)
    assert isinstance(result["order"].ship_to, Address)
    assert result["order"].ship_to.city == "Lyon"
    assert result["order"].quantity == 1
    assert result["priority"] == "normal"
    assert result["tags"] == ["gift"]


async def test_empty_arguments_for_a_tool_without_parameters() -> None:
    @function_tool
    async def now() -> str:
        return "noon"

    assert await now.invoke("") == "noon"
    assert await now.invoke("  ") == "noon"
    assert await now.invoke({}) == "noon"


async def test_bad_arguments_list_every_problem_for_the_model() -> None:
    tool = FunctionTool(get_weather)
    with pytest.raises(ToolArgumentsError) as caught:
        await tool.invoke({"unit": "kelvin", "days": "soon"})
    error = caught.value
    assert isinstance(error, ToolError)
    message = str(error)
    assert message.startswith("tool get_weather: ")
    assert "argument 'location' is required" in message
    assert "argument 'unit': input should be 'celsius' or 'fahrenheit' (got 'kelvin')" in message
    assert "argument 'days': input should be a valid integer" in message
    assert "(got 'soon')" in message
    assert len(error.problems) == 3


async def test_nested_argument_errors_name_the_path() -> None:
    tool = FunctionTool(place_order)
    with pytest.raises(ToolArgumentsError) as caught:
        await tool.invoke({"order": {"quantity": "many", "ship_to": {"street": 5}}})
    problems = caught.value.problems
    assert "argument 'order.item' is required" in problems
    assert any(
        p.startswith("argument 'order.quantity': input should be a valid integer") for p in problems
    )
    assert any(
        p.startswith("argument 'order.ship_to.street': input should be a valid string")
        for p in problems
    )
    assert "argument 'order.ship_to.city' is required" in problems


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("{location: Paris}", "the arguments are not valid JSON"),
        ('{"location": "Paris"', "the arguments are not valid JSON"),
        ("[1, 2]", "the arguments must be a JSON object, got list"),
        ('"Paris"', "the arguments must be a JSON object, got str"),
        ("null", "the arguments must be a JSON object, got NoneType"),
    ],
)
async def test_malformed_arguments(arguments: str, expected: str) -> None:
    with pytest.raises(ToolArgumentsError, match=expected) as caught:
        await FunctionTool(get_weather).invoke(arguments)
    assert str(caught.value).startswith("tool get_weather: ")


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )


_fuzz_tool = FunctionTool(place_order)
_fuzz_keys = st.sampled_from(["order", "priority", "tags", "extra", "ratio", "note", "other"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(max_size=40) | st.dictionaries(_fuzz_keys, _json_values(), max_size=4).map(json.dumps)
)
def test_any_model_output_is_a_call_or_a_tool_arguments_error(arguments: str) -> None:
    result, error = _outcome(_fuzz_tool, arguments)
    if error is None:
        assert isinstance(result["order"], Order)
    else:
        assert str(error).startswith("tool place_order: ")
        assert error.problems


def _outcome(tool: FunctionTool, arguments: str) -> tuple[Any, ToolArgumentsError | None]:
    """The call's result, or the ToolArgumentsError; any other exception fails the test."""
    try:
        return asyncio.run(tool.invoke(arguments)), None
    except ToolArgumentsError as error:
        return None, error


async def test_sync_tool_runs_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    released = threading.Event()
    seen: dict[str, Any] = {}

    def blocking(x: int) -> int:
        seen["thread"] = threading.get_ident()
        # Waits for a coroutine on the loop: if this ran on the loop, it would never be set.
        seen["released"] = released.wait(timeout=10)
        return x * 2

    async def release() -> None:
        await asyncio.sleep(0)
        released.set()

    releaser = asyncio.create_task(release())
    assert await FunctionTool(blocking).invoke({"x": 21}) == 42
    await releaser
    assert seen["released"] is True
    assert seen["thread"] != loop_thread


async def test_async_callable_objects_and_sync_wrappers_of_coroutines() -> None:
    class Lookup:
        __name__ = "lookup"

        async def __call__(self, key: str) -> str:
            return key.upper()

    async def inner(x: int) -> int:
        return x + 1

    def wrapper(x: int) -> Any:
        return inner(x)

    assert await FunctionTool(Lookup()).invoke({"key": "ab"}) == "AB"
    assert await FunctionTool(wrapper).invoke({"x": 1}) == 2


async def test_timeout_raises_tool_error() -> None:
    never = asyncio.Event()

    @function_tool(timeout=0.05)
    async def stuck() -> str:
        await never.wait()
        return "done"

    with pytest.raises(ToolError, match=r"^tool stuck timed out after 0\.05 s$") as caught:
        await stuck.invoke({})
    assert not isinstance(caught.value, ToolArgumentsError)


async def test_timeout_of_a_sync_tool() -> None:
    release = threading.Event()

    def slow() -> str:
        release.wait(timeout=10)
        return "late"

    tool = function_tool(slow, timeout=0.05)
    try:
        with pytest.raises(ToolError, match=r"^tool slow timed out after 0\.05 s$"):
            await tool.invoke({})
    finally:
        release.set()  # let the worker thread finish


async def test_the_tools_own_timeout_error_is_not_rewritten() -> None:
    @function_tool(timeout=30)
    async def upstream() -> str:
        raise TimeoutError("upstream API timed out")

    with pytest.raises(TimeoutError, match="upstream API timed out"):
        await upstream.invoke({})


async def test_exceptions_inside_a_tool_propagate_unchanged() -> None:
    boom = RuntimeError("database down")

    async def fails() -> None:
        raise boom

    def fails_sync() -> None:
        raise boom

    for fn in (fails, fails_sync):
        with pytest.raises(RuntimeError) as caught:
            await FunctionTool(fn).invoke({})
        assert caught.value is boom


def test_bad_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        FunctionTool(get_weather, timeout=0)


# --- the decorator ------------------------------------------------------------------------------


async def test_function_tool_forms() -> None:
    @function_tool
    async def bare(x: int) -> int:
        return x

    @function_tool(name="renamed", timeout=3, description="Says hi.")
    def configured(name: str) -> str:
        return f"hi {name}"

    called = function_tool(get_weather)

    assert isinstance(bare, FunctionTool)
    assert bare.name == "bare"
    assert (configured.name, configured.timeout, configured.description) == (
        "renamed",
        3,
        "Says hi.",
    )
    assert called.name == "get_weather"
    assert await configured.invoke({"name": "Ada"}) == "hi Ada"
    # The tool stays callable like the function it wraps.
    assert configured("Bob") == "hi Bob"
    assert await bare(5) == 5


# --- the registry -------------------------------------------------------------------------------


def test_registry_register_get_iterate() -> None:
    registry = ToolRegistry()
    weather = registry.register(get_weather)
    order = registry.register(function_tool(place_order), timeout=2)
    assert isinstance(weather, FunctionTool)
    assert registry.get("get_weather") is weather
    assert registry.get("missing") is None
    assert "place_order" in registry
    assert [t.name for t in registry] == ["get_weather", "place_order"]
    assert len(registry) == 2
    assert order.timeout == 2
    assert [s["function"]["name"] for s in registry.schemas()] == ["get_weather", "place_order"]


def test_registry_rejects_duplicates_clearly() -> None:
    registry = ToolRegistry([get_weather])
    with pytest.raises(ValueError, match="a tool named 'get_weather' is already registered"):
        registry.register(get_weather)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(place_order, name="get_weather")
    renamed = registry.register(get_weather, name="weather_again")
    assert renamed.name == "weather_again"
    assert len(registry) == 2


def test_registering_a_tool_under_a_new_name_leaves_the_original_alone() -> None:
    original = function_tool(get_weather)
    registry = ToolRegistry()
    copy = registry.register(original, name="forecast")
    assert copy.name == "forecast"
    assert original.name == "get_weather"
    assert registry.register(original) is original


def test_registry_extend_is_all_or_nothing() -> None:
    registry = ToolRegistry([get_weather])

    def ping() -> str:
        return "pong"

    with pytest.raises(ValueError, match="already registered"):
        registry.extend([ping, get_weather])
    assert [t.name for t in registry] == ["get_weather"]
    with pytest.raises(ValueError, match="two tools are named 'ping'"):
        registry.extend([ping, ping])
    assert len(registry) == 1
    added = registry.extend([ping, place_order])
    assert [t.name for t in added] == ["ping", "place_order"]
    assert len(registry) == 3


def test_registry_unregister() -> None:
    registry = ToolRegistry([get_weather])
    registry.unregister("get_weather")
    assert len(registry) == 0
    with pytest.raises(KeyError, match="no tool named 'get_weather'"):
        registry.unregister("get_weather")


def test_iterating_while_registering_is_safe() -> None:
    registry = ToolRegistry([get_weather])

    def ping() -> str:
        return "pong"

    for _ in registry:
        registry.register(ping)
    assert len(registry) == 2


def test_importing_tools_does_not_import_pydantic() -> None:
    code = (
        "import sys, parley.tools, parley.llm\n"
        "heavy = [m for m in ('pydantic', 'docstring_parser') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_tool_keeps_its_examples_and_whether_its_result_is_the_reply() -> None:
    @function_tool(result_is_reply=True, examples=[("Tell me a joke.", {})])
    def tell_joke() -> str:
        """Tell a joke."""
        return "Ha."

    assert tell_joke.result_is_reply
    assert tell_joke.examples == (("Tell me a joke.", {}),)
    plain = FunctionTool(tell_joke.fn)
    assert not plain.result_is_reply and plain.examples == ()
