"""A tool-call protocol that a 135M-parameter model can follow.

Small models do not know any native tool-call format, so the prompt teaches one by example:
the system message lists the tools, then a fixed block of example turns shows that a question
a tool can answer gets exactly one line of JSON, ``{"tool": "get_weather", "arguments":
{"location": "Paris"}}``, and that any other question gets a plain answer. Tool results come
back as a user turn that starts with ``Tool result``. The system message and the examples
depend only on the instructions and the tools, so they form a prompt prefix that stays the
same from turn to turn and llama.cpp keeps it in its KV cache.

Small models copy surface patterns more than they generalize, so the examples must look like
real questions for the real tool. Give them on the tool (``function_tool(examples=...)``) or
as ``tool_examples``; tools about the weather get
built-in ones, any other tool gets examples made from its description (weaker).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parley.chat import ChatContext, ChatMessage, ToolCall
from parley.tools import FunctionTool

DEFAULT_INSTRUCTIONS = "You are a helpful voice assistant. Answer in one or two short sentences."
TOOL_RESULT_PREFIX = "Tool result"
# Which example calls are followed by their result and its answer. After the first call
# only, SmolLM2-135M tried to call again on 8 of 15 real results; after the first two, on
# none. Further ones crowd out the calls (11-14 of 16 weather questions called, not 15).
RESULT_EXAMPLES = (0, 1)

# One tool example: a user question and the arguments the call should carry.
ToolExample = tuple[str, Mapping[str, Any]]

# Questions that need no tool, with plain answers: they teach the model when not to call.
PLAIN_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("Hi there!", "Hello! How can I help you?"),
    ("Tell me a joke.", "Why did the computer go to the doctor? It had a virus."),
    ("What is 3 plus 4?", "3 plus 4 is 7."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("How are you today?", "I am fine, thank you!"),
)

# Weather is the canonical demo tool; these phrasings were chosen by measurement on SmolLM2.
_WEATHER_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What's the weather in Paris?", "Paris"),
    ("Is it raining in Tokyo?", "Tokyo"),
    ("How warm is it in Lima today?", "Lima"),
    ("Weather for Oslo please.", "Oslo"),
    ("Do I need a coat in Boston?", "Boston"),
    ("What's the temperature in Dublin?", "Dublin"),
)
_WEATHER_WORDS = ("weather", "forecast", "temperature")
_PLACE_PARAMS = ("location", "city", "place", "town", "where")
_SAMPLE_PLACES = ("Paris", "Tokyo", "Lima", "Oslo", "Boston", "Dublin")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the prompt needs to know about a tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    examples: tuple[ToolExample, ...] = ()  # the tool's own (`FunctionTool.examples`)

    @classmethod
    def of(cls, tool: FunctionTool) -> ToolSpec:
        return cls(tool.name, tool.description or "", tool.parameters or {}, tool.examples)

    @property
    def properties(self) -> Mapping[str, Any]:
        props = self.parameters.get("properties", {})
        return props if isinstance(props, Mapping) else {}


def tool_call_json(name: str, arguments: Mapping[str, Any]) -> str:
    """The one-line JSON the model is taught to write (and history is rendered with)."""
    return json.dumps({"tool": name, "arguments": dict(arguments)}, ensure_ascii=False)


def system_prompt(instructions: str, tools: Sequence[ToolSpec]) -> str:
    if not tools:
        return instructions
    lines = [instructions, "", "You can use these tools:"]
    for tool in tools:
        args = {name: _type_name(schema) for name, schema in tool.properties.items()}
        lines.append(f"- {tool.name}: {tool.description} Arguments: {json.dumps(args)}")
    lines += [
        "",
        'To use a tool, reply with only one line of JSON: {"tool": "<tool name>", '
        '"arguments": {...}}',
        f'After a "{TOOL_RESULT_PREFIX}" message, answer the user from that result.',
        "Answer other questions in plain words.",
    ]
    return "\n".join(lines)


def examples_for(tool: ToolSpec, given: Sequence[ToolExample] | None) -> list[ToolExample]:
    """The tool's few-shot examples: ``given``, else the tool's own, else built-in weather
    ones, else synthetic."""
    if given:
        return list(given)
    if tool.examples:
        return list(tool.examples)
    place_param = next((p for p in tool.properties if p.lower() in _PLACE_PARAMS), None)
    if place_param is None and tool.properties:
        place_param = next(iter(tool.properties))
    text = f"{tool.name} {tool.description}".lower()
    if place_param is not None and any(word in text for word in _WEATHER_WORDS):
        return [(question, {place_param: place}) for question, place in _WEATHER_QUESTIONS]
    return _synthetic_examples(tool)


def few_shot_messages(
    tools: Sequence[ToolSpec], tool_examples: Mapping[str, Sequence[ToolExample]]
) -> list[dict[str, str]]:
    """Example turns, tool calls interleaved with plain answers (order matters to the model)."""
    calls: list[tuple[str, ToolSpec, Mapping[str, Any]]] = []
    per_tool = [examples_for(tool, tool_examples.get(tool.name)) for tool in tools]
    for round_ in range(max((len(e) for e in per_tool), default=0)):
        for tool, examples in zip(tools, per_tool, strict=True):
            if round_ < len(examples):
                question, arguments = examples[round_]
                calls.append((question, tool, arguments))
    # A plain answer to a question a tool answers would contradict that tool's examples.
    asked = {question for question, _, _ in calls}
    plain = [example for example in PLAIN_EXAMPLES if example[0] not in asked]
    turns: list[tuple[str, str]] = []
    for index in range(max(len(calls), len(plain))):
        if index < len(calls):
            question, tool, arguments = calls[index]
            turns.append((question, tool_call_json(tool.name, arguments)))
            if index in RESULT_EXAMPLES:  # how a result comes back and is answered
                turns.append(_result_example(tool, arguments))
        if index < len(plain):
            turns.append(plain[index])
    out: list[dict[str, str]] = []
    for question, answer in turns:
        out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return out


def _result_example(tool: ToolSpec, arguments: Mapping[str, Any]) -> tuple[str, str]:
    """A tool-result turn and its answer, for one of the first example calls."""
    values = " ".join(str(v) for v in arguments.values())
    if any(word in f"{tool.name} {tool.description}".lower() for word in _WEATHER_WORDS):
        result, answer = "Sunny, 24 degrees.", f"It is sunny and 24 degrees in {values}."
    else:
        result = "OK, 42."
        answer = f"The result for {values} is 42." if values else "The result is 42."
    return f"{TOOL_RESULT_PREFIX} ({tool.name}): {result}", answer


def render_messages(
    ctx: ChatContext,
    tools: Sequence[ToolSpec],
    tool_examples: Mapping[str, Sequence[ToolExample]],
    *,
    skip: int = 0,
    history_turns: int | None = None,
) -> list[dict[str, str]]:
    """Chat-template messages for ``ctx``: stable prefix first, then the conversation.

    ``history_turns`` keeps only that many exchanges before the latest user message (None:
    all); ``skip`` then drops that many of the oldest remaining messages (to fit the context).
    """
    messages = list(ctx)
    instructions = DEFAULT_INSTRUCTIONS
    if messages and messages[0].role == "system":
        instructions = messages[0].content or DEFAULT_INSTRUCTIONS
        messages = messages[1:]
    if history_turns is not None:
        users = [index for index, message in enumerate(messages) if message.role == "user"]
        if len(users) > history_turns:
            messages = messages[users[-1 - history_turns] :]
    out = [{"role": "system", "content": system_prompt(instructions, tools)}]
    if tools:
        out += few_shot_messages(tools, tool_examples)
    for message in _without_orphan_results(messages[skip:]):
        out.append(_render(message))
    return out


def last_user_text(ctx: ChatContext) -> str:
    message = ctx.last("user")
    return message.content if message is not None else ""


def parse_tool_call(text: str, tools: Iterable[ToolSpec], user_text: str = "") -> ToolCall | None:
    """A `ToolCall` if ``text`` starts with a JSON object naming a known tool, else None.

    Free-text string arguments must come from the user's words: a small model that calls a
    tool for an unrelated question invents them (often copied from the examples), and a plain
    answer is better than a wrong call. Enum values are exempt.
    """
    obj = _leading_json_object(text)
    if obj is None:
        return None
    name = obj.get("tool", obj.get("name"))
    arguments = obj.get("arguments", obj.get("parameters", {}))
    known = {tool.name: tool for tool in tools}
    if not isinstance(name, str) or name not in known or not isinstance(arguments, dict):
        return None
    if user_text and not _grounded(arguments, known[name], user_text):
        return None
    return ToolCall(name=name, arguments=json.dumps(arguments, ensure_ascii=False))


def json_object_complete(text: str) -> bool:
    """True once ``text`` holds a whole leading JSON object (generation can stop there)."""
    return _leading_json_object(text) is not None


def call_skeleton(tool: ToolSpec) -> str:
    """The start of every call of ``tool`` in the taught format, up to the first free choice:
    the argument's value when there is a single string argument, else the argument names. A
    tool without arguments has no free choice: its whole call."""
    if not tool.properties:
        return tool_call_json(tool.name, {})
    opening = tool_call_json(tool.name, {})[:-2]  # '{"tool": "<name>", "arguments": {'
    [(name, schema)] = tool.properties.items() if len(tool.properties) == 1 else [("", None)]
    if name and _type_name(schema) == "string":
        opening += json.dumps(name) + ': "'
    return opening


def forced_continuation(held: str, tools: Sequence[ToolSpec]) -> str:
    """What must follow ``held`` (output that opened a JSON object) for it to stay a call of
    one of ``tools``, as far as that is fixed; "" if the model has a choice to make now.

    Generating these tokens one by one is most of a tool turn's first round on a small model;
    the engine appends them to the prompt instead, which evaluates them in one batch.
    """
    text = held.lstrip()
    if not text.startswith("{"):
        return ""
    skeletons = [call_skeleton(tool) for tool in tools]
    fitting = [skeleton for skeleton in skeletons if skeleton.startswith(text)]
    if not fitting:
        return ""
    # The common prefix of all fitting skeletons is that of the lexically first and last one.
    first, last = min(fitting), max(fitting)
    pairs = enumerate(zip(first, last, strict=False))
    shared = next((i for i, (a, b) in pairs if a != b), len(first))
    return first[len(text) : shared]


def may_be_grounded(held: str, tools: Sequence[ToolSpec], user_text: str) -> bool:
    """False as soon as the free-text argument being written in ``held`` (a call begun with
    a tool's `call_skeleton`) can no longer come from the user's words, as `parse_tool_call`
    requires: the call is refused there rather than after the model has finished it."""
    text = held.lstrip()
    said = _normalize(user_text)
    for tool in tools:
        skeleton = call_skeleton(tool)
        if not skeleton.endswith('"') or not text.startswith(skeleton):
            continue
        [schema] = tool.properties.values()
        if _is_enum(schema):
            return True
        value, *closed = text[len(skeleton) :].split('"', 1)  # what is written of it so far
        return _words_within(value, said, whole=bool(closed))
    return True


def could_be_tool_call(text: str) -> bool:
    """True while the output so far may still turn out to be a JSON tool call."""
    stripped = text.lstrip()
    return stripped == "" or stripped.startswith("{")


def _leading_json_object(text: str) -> dict[str, Any] | None:
    stripped = text.lstrip()
    if not stripped.startswith("{") or "}" not in stripped:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _grounded(arguments: Mapping[str, Any], tool: ToolSpec, user_text: str) -> bool:
    said = _normalize(user_text)
    for name, value in arguments.items():
        schema = tool.properties.get(name, {})
        if not isinstance(value, str) or _is_enum(schema):
            continue
        if not _words_within(value, said):
            return False
    return True


def _is_enum(schema: Any) -> bool:
    """Enum values are exempt from grounding: the user need not say them word for word."""
    return isinstance(schema, Mapping) and "enum" in schema


def _words_within(value: str, said: str, *, whole: bool = True) -> bool:
    """Whether ``value``'s words occur in ``said`` (normalized) as a run of whole words; with
    ``whole=False`` the last word may be cut short (a value still being written)."""
    words = _normalize(value)
    end = " " if whole else ""
    return not words or f" {words}{end}" in f" {said} "


def _normalize(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _render(message: ChatMessage) -> dict[str, str]:
    if message.role == "tool":
        name = f" ({message.name})" if message.name else ""
        return {"role": "user", "content": f"{TOOL_RESULT_PREFIX}{name}: {message.content}"}
    if message.role == "assistant" and message.tool_calls:
        lines = [message.content] if message.content else []
        for call in message.tool_calls:
            lines.append(tool_call_json(call.name, _loads_object(call.arguments)))
        return {"role": "assistant", "content": "\n".join(lines)}
    return {"role": message.role, "content": message.content}


def _without_orphan_results(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Drop leading tool results whose call was cut away (after skipping old messages)."""
    start = 0
    while start < len(messages) and messages[start].role == "tool":
        start += 1
    return messages[start:]


def _loads_object(arguments: str) -> Mapping[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _type_name(schema: Any) -> str:
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        if isinstance(kind, str):
            return kind
    return "any"


def _synthetic_examples(tool: ToolSpec) -> list[ToolExample]:
    """Requests made from the description, e.g. "Look up the price for Paris." (weak)."""
    action = tool.description.rstrip(".") or tool.name.replace("_", " ")
    examples: list[ToolExample] = []
    for index, place in enumerate(_SAMPLE_PLACES[:3]):
        arguments = {
            name: _sample_value(schema, place, index) for name, schema in tool.properties.items()
        }
        values = ", ".join(str(v) for v in arguments.values())
        examples.append((f"{action}: {values}." if values else f"{action}.", arguments))
    return examples


def _sample_value(schema: Any, place: str, index: int) -> Any:
    if isinstance(schema, Mapping):
        if schema.get("enum"):
            choices = list(schema["enum"])
            return choices[index % len(choices)]
        kind = schema.get("type")
        if kind == "integer":
            return index + 2
        if kind == "number":
            return index + 1.5
        if kind == "boolean":
            return index % 2 == 0
    return place
