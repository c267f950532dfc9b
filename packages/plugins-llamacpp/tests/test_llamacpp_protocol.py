"""The few-shot tool-call protocol, without a model: prompt layout and output parsing."""

from __future__ import annotations

import json

import pytest
from parley.chat import ChatContext, ToolCall
from parley.tools import FunctionTool, function_tool
from parley_llamacpp.protocol import (
    TOOL_RESULT_PREFIX,
    ToolSpec,
    call_skeleton,
    could_be_tool_call,
    examples_for,
    few_shot_messages,
    forced_continuation,
    json_object_complete,
    may_be_grounded,
    parse_tool_call,
    render_messages,
)


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"Sunny in {location}."


def convert_currency(amount: float, currency: str) -> str:
    """Convert an amount of euros to another currency."""
    return f"{amount} {currency}"


def tell_time() -> str:
    """Tell the current time."""
    return "noon"


WEATHER = ToolSpec.of(FunctionTool(get_weather))
CURRENCY = ToolSpec.of(FunctionTool(convert_currency))
CLOCK = ToolSpec.of(FunctionTool(tell_time))


def conversation() -> ChatContext:
    ctx = ChatContext()
    ctx.add("system", "You are terse.")
    ctx.add("user", "What's the weather in Rome?")
    return ctx


def test_parses_a_call_to_a_known_tool_with_arguments_as_json_text() -> None:
    call = parse_tool_call(
        '{"tool": "get_weather", "arguments": {"location": "Rome"}}\n',
        [WEATHER],
        "What's the weather in Rome?",
    )
    assert call is not None
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "Rome"}


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Rome is sunny.",
        '{"tool": "book_flight", "arguments": {"to": "Rome"}}',  # unknown tool
        '{"tool": "get_weather", "arguments": "Rome"}',  # arguments not an object
        '{"tool": "get_weather", "arguments": {"location": "Rome"',  # never closed
        '["get_weather"]',
    ],
)
def test_anything_else_is_not_a_call(text: str) -> None:
    assert parse_tool_call(text, [WEATHER], "What's the weather in Rome?") is None


def test_string_arguments_must_come_from_what_the_user_said() -> None:
    invented = '{"tool": "get_weather", "arguments": {"location": "Lima"}}'
    assert parse_tool_call(invented, [WEATHER], "What time is it?") is None
    said = '{"tool": "get_weather", "arguments": {"location": "new york"}}'
    assert parse_tool_call(said, [WEATHER], "Weather in New York, please!") is not None
    part_of_a_word = '{"tool": "get_weather", "arguments": {"location": "Rome"}}'
    assert parse_tool_call(part_of_a_word, [WEATHER], "Who wrote Romeo and Juliet?") is None


def test_output_is_held_only_while_it_can_still_be_json() -> None:
    assert could_be_tool_call("")
    assert could_be_tool_call(" \n")
    assert could_be_tool_call('{"tool": "get_')
    assert not could_be_tool_call("The")
    assert not json_object_complete('{"tool": "get_weather", "arguments": {')
    assert json_object_complete('{"tool": "x", "arguments": {}} trailing')


def test_prompt_lists_tools_then_examples_then_the_conversation() -> None:
    messages = render_messages(conversation(), [WEATHER], {})
    system = messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith("You are terse.")
    assert "get_weather: Get the current weather for a location." in system["content"]
    assert messages[-1] == {"role": "user", "content": "What's the weather in Rome?"}
    examples = messages[1:-1]
    calls = [m["content"] for m in examples if m["content"].startswith("{")]
    assert calls, "the few-shot block shows tool calls"
    for line in calls:
        parsed = json.loads(line)
        assert parsed["tool"] == "get_weather"
        assert set(parsed["arguments"]) == {"location"}
    plain = [m for m in examples if m["role"] == "assistant" and not m["content"].startswith("{")]
    assert plain, "the few-shot block shows plain answers too"
    assert any(m["content"].startswith(TOOL_RESULT_PREFIX) for m in examples)


def test_prefix_is_stable_across_turns_for_the_kv_cache() -> None:
    ctx = conversation()
    first = render_messages(ctx, [WEATHER], {})
    call = ToolCall(name="get_weather", arguments='{"location": "Rome"}')
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "Sunny, 25 degrees.", tool_call_id=call.id, name=call.name)
    second = render_messages(ctx, [WEATHER], {})
    assert second[: len(first)] == first
    assert second[len(first)] == {
        "role": "assistant",
        "content": '{"tool": "get_weather", "arguments": {"location": "Rome"}}',
    }
    assert second[-1] == {
        "role": "user",
        "content": f"{TOOL_RESULT_PREFIX} (get_weather): Sunny, 25 degrees.",
    }


def test_skipping_old_turns_never_starts_on_an_orphan_tool_result() -> None:
    ctx = conversation()
    call = ToolCall(name="get_weather", arguments='{"location": "Rome"}')
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "Sunny.", tool_call_id=call.id, name=call.name)
    ctx.add("assistant", "It is sunny in Rome.")
    full = render_messages(ctx, [], {})
    trimmed = render_messages(ctx, [], {}, skip=2)
    assert trimmed[0] == full[0]
    assert trimmed[1:] == [{"role": "assistant", "content": "It is sunny in Rome."}]


def test_no_tools_means_no_tool_prompt() -> None:
    messages = render_messages(conversation(), [], {})
    assert messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What's the weather in Rome?"},
    ]


def test_given_examples_replace_the_made_up_ones() -> None:
    given = [("How many dollars is 5 euros?", {"amount": 5, "currency": "USD"})]
    assert examples_for(CURRENCY, given) == given
    made_up = examples_for(CURRENCY, None)
    assert made_up
    for _question, arguments in made_up:
        assert set(arguments) == {"amount", "currency"}
        assert isinstance(arguments["amount"], float | int)


def test_history_turns_keeps_only_the_latest_exchanges() -> None:
    ctx = conversation()
    ctx.add("assistant", "Sunny in Rome.")
    ctx.add("user", "And in Paris?")
    ctx.add("assistant", "Cloudy in Paris.")
    ctx.add("user", "Who wrote Hamlet?")
    full = render_messages(ctx, [], {})
    assert render_messages(ctx, [], {}, history_turns=None) == full
    assert render_messages(ctx, [], {}, history_turns=5) == full
    assert render_messages(ctx, [], {}, history_turns=0) == [
        full[0],
        {"role": "user", "content": "Who wrote Hamlet?"},
    ]
    assert render_messages(ctx, [], {}, history_turns=1) == [full[0], *full[-3:]]


def test_history_turns_keeps_the_tool_round_of_the_current_question() -> None:
    ctx = conversation()
    call = ToolCall(name="get_weather", arguments='{"location": "Rome"}')
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "Sunny.", tool_call_id=call.id, name=call.name)
    messages = render_messages(ctx, [WEATHER], {}, history_turns=0)
    assert messages[-3]["content"] == "What's the weather in Rome?"
    assert messages[-1]["content"].startswith(TOOL_RESULT_PREFIX)


def test_call_skeleton_runs_up_to_the_first_free_choice() -> None:
    assert call_skeleton(WEATHER) == '{"tool": "get_weather", "arguments": {"location": "'
    # Two arguments: the model picks which comes first, so only the opening is fixed.
    assert call_skeleton(CURRENCY) == '{"tool": "convert_currency", "arguments": {'
    # No arguments: nothing is left to choose, and no argument may be made up.
    assert json.loads(call_skeleton(CLOCK)) == {"tool": "tell_time", "arguments": {}}


def test_the_taught_answer_to_a_result_of_a_tool_without_arguments_reads_well() -> None:
    ctx = ChatContext()
    ctx.add("user", "What time is it?")
    messages = render_messages(ctx, [CLOCK], {}, history_turns=0)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert "The result is 42." in answers
    assert not any("for  is" in answer for answer in answers)


def test_forced_continuation_fills_in_what_every_fitting_call_shares() -> None:
    tools = [WEATHER, CURRENCY]
    assert forced_continuation("{", [WEATHER]) == call_skeleton(WEATHER)[1:]
    assert forced_continuation(' {"', [WEATHER]) == call_skeleton(WEATHER)[2:]
    assert forced_continuation("{", tools) == '"tool": "'  # then the model names the tool
    assert forced_continuation('{"tool": "conv', tools) == call_skeleton(CURRENCY)[14:]
    # Nothing is forced once the output leaves every skeleton, or is past it, or is not JSON.
    assert forced_continuation('{"name"', tools) == ""
    assert forced_continuation(call_skeleton(WEATHER) + "Ro", [WEATHER]) == ""
    assert forced_continuation("Sure", tools) == ""
    assert forced_continuation("{", []) == ""


def test_a_call_is_given_up_once_its_argument_leaves_the_users_words() -> None:
    said = "Who wrote Romeo and Juliet?"
    begun = call_skeleton(WEATHER)
    assert may_be_grounded(begun, [WEATHER], said)
    assert may_be_grounded(begun + "Rome", [WEATHER], said)  # could still become "Romeo"
    assert may_be_grounded(begun + 'Romeo"}}', [WEATHER], said)
    assert not may_be_grounded(begun + 'Rome"', [WEATHER], said)  # a word of its own
    assert not may_be_grounded(begun + "Dub", [WEATHER], said)
    assert not may_be_grounded(begun + "meo", [WEATHER], said)  # words start where they do
    assert may_be_grounded(begun + "New Yo", [WEATHER], "Weather in New York?")
    # Before the argument, with several arguments, or an enum: nothing to judge by yet.
    assert may_be_grounded('{"tool": "get_', [WEATHER], said)
    assert may_be_grounded(call_skeleton(CURRENCY) + '"currency": "Dub', [CURRENCY], said)
    mode = ToolSpec("set_mode", "", {"properties": {"mode": {"type": "string", "enum": ["eco"]}}})
    assert may_be_grounded(call_skeleton(mode) + "ec", [mode], said)


def test_two_example_calls_show_their_result_being_answered() -> None:
    messages = render_messages(conversation(), [WEATHER], {})
    results = [i for i, m in enumerate(messages) if m["content"].startswith(TOOL_RESULT_PREFIX)]
    assert len(results) == 2
    for index in results:
        call = json.loads(messages[index - 1]["content"])
        place = call["arguments"]["location"]
        assert messages[index + 1] == {
            "role": "assistant",
            "content": f"It is sunny and 24 degrees in {place}.",
        }


def test_a_tools_own_examples_come_before_made_up_ones_and_after_given_ones() -> None:
    @function_tool(examples=[("Tell me a joke.", {}), ("Make me laugh.", {})])
    def tell_joke() -> str:
        """Tell a joke."""
        return "Ha."

    spec = ToolSpec.of(tell_joke)
    assert examples_for(spec, None) == [("Tell me a joke.", {}), ("Make me laugh.", {})]
    assert examples_for(spec, [("Joke, please.", {})]) == [("Joke, please.", {})]
    # Its requests are shown as calls, and a plain example asking the same is left out.
    messages = few_shot_messages([spec], {})
    asked = [m["content"] for m in messages if m["role"] == "user"]
    assert asked.count("Tell me a joke.") == 1 and "Make me laugh." in asked
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert '{"tool": "tell_joke", "arguments": {}}' in answers
