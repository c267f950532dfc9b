"""Function tools: a plain (async or sync) Python function becomes a tool the model can call.

The JSON schema comes from the function's type hints and docstring (through pydantic).
Arguments from a model are validated; bad arguments raise `ToolArgumentsError`, whose message
is written for the model to read and correct itself.

```python
@function_tool(timeout=5)
async def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    \"\"\"Get the current weather.

    Args:
        location: City name, e.g. "Paris".
        unit: Temperature unit.
    \"\"\"
```

On a method of a class (an `Agent` subclass), ``@function_tool`` declares a tool of every
instance: ``self`` is left out of the schema, and reading the attribute from an instance gives
the tool bound to it. `method_tools` lists an object's declared tools, bound.

pydantic and docstring_parser are imported when the first tool is built, not with `parley`.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin, overload

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

__all__ = [
    "FunctionTool",
    "ToolArgumentsError",
    "ToolError",
    "ToolRegistry",
    "function_tool",
    "method_tools",
]

# What OpenAI-style APIs accept as a function name; checked early so a bad name fails at
# registration rather than as an opaque 400 from the provider mid-call.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolError(Exception):
    """A tool failed; the message is returned to the model."""


class ToolArgumentsError(ToolError):
    """The model's arguments did not match the tool's schema.

    ``problems`` lists each problem on its own (the message joins them).
    """

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


class FunctionTool:
    """A callable the model may invoke, with its name, description and JSON schema.

    Built from ``fn``'s signature, type hints and docstring. Pass ``parameters`` (a JSON
    schema of the arguments object) to describe a tool defined elsewhere, such as a tool on
    an MCP server; its arguments are then passed to ``fn`` as keywords without validation.
    Sync functions run in a worker thread so they never block the event loop; when
    ``timeout`` (seconds) passes, the call fails with `ToolError` (a thread cannot be stopped
    and finishes in the background).

    ``read_only``: calling the tool changes nothing in the world (a lookup, like MCP's
    ``readOnlyHint``), so a reply answered ahead of the end of the turn may call it before
    the turn is committed (`parley.preemption`); other tools wait for the commit.

    ``result_is_reply``: the tool's result is what the agent says, as it is, instead of
    going back to the model for another round (a cascading pipeline saves that round's
    time to first audio; a realtime model always answers itself). Write the result as a
    spoken sentence. A call that fails goes back to the model as usual.

    ``examples``: requests that call this tool, with the arguments they call it with, e.g.
    ``[("Tell me a joke.", {})]``. Small local models learn when to call from them
    (parley-llamacpp shows them in its prompt); cloud models do not need them.

    A function whose first parameter is ``self`` is a method (``is_method``): the schema
    leaves ``self`` out, and the tool is used through `bind` (reading it from an instance
    binds it, as for any method).
    """

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any]
    timeout: float | None
    read_only: bool
    result_is_reply: bool
    examples: tuple[tuple[str, dict[str, Any]], ...]
    is_method: bool  # declared on a class, not yet bound to an instance

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        parameters: Mapping[str, Any] | None = None,
        read_only: bool = False,
        result_is_reply: bool = False,
        examples: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        if not callable(fn):
            raise TypeError(f"a tool needs a function, got {fn!r}")
        tool_name = name if name is not None else getattr(fn, "__name__", None)
        if not isinstance(tool_name, str):
            raise TypeError(f"cannot tell the name of tool {fn!r}; pass name=...")
        if not _NAME.match(tool_name):
            raise ValueError(
                f"tool name {tool_name!r} is not allowed: use 1-64 letters, digits, '_' or '-'"
            )
        if timeout is not None and timeout <= 0:
            raise ValueError(f"tool {tool_name}: timeout must be positive, got {timeout}")
        self.fn = fn
        self.name = tool_name
        self.timeout = timeout
        self.read_only = read_only
        self.result_is_reply = result_is_reply
        self.examples = tuple((str(request), dict(arguments)) for request, arguments in examples)
        self.is_method = parameters is None and _takes_self(fn)
        self._is_async = _is_async_callable(fn)
        self._model: type[BaseModel] | None = None
        self._keywords: dict[str, str] = {}  # pydantic field name -> the function's parameter
        if parameters is not None:
            self.parameters = dict(parameters)
            self.description = description or ""
            return
        summary, arg_docs = _parse_docstring(fn)
        self.description = description if description is not None else summary
        self._model, self._keywords = _arguments_model(
            fn, tool_name, arg_docs, skip_first=self.is_method
        )
        self.parameters = _clean_schema(self._model.model_json_schema())

    # --- methods ------------------------------------------------------------------------------

    def bind(self, instance: object) -> FunctionTool:
        """This method tool bound to ``instance``: it runs with ``self`` set to ``instance``."""
        if not self.is_method:
            raise TypeError(f"tool {self.name} is not a method; only a method tool can be bound")
        tool = copy.copy(self)
        tool.fn = types.MethodType(self.fn, instance)
        tool.is_method = False
        return tool

    def __get__(self, instance: object | None, owner: type | None = None) -> FunctionTool:
        # ``agent.get_weather`` is the tool bound to ``agent``, as for a plain method, so a
        # method tool can also be called directly from the agent's own code.
        if instance is None or not self.is_method:
            return self
        return self.bind(instance)

    # --- calling ------------------------------------------------------------------------------

    async def invoke(self, arguments: str | Mapping[str, Any]) -> Any:
        """Validate ``arguments`` (JSON text or a mapping) and call the function.

        Raises `ToolArgumentsError` for bad arguments and `ToolError` on timeout; an exception
        raised by the function itself propagates unchanged.
        """
        if self.is_method:
            raise ToolError(f"tool {self.name} is a method that was never bound to an instance")
        kwargs = self._validate(self._decode(arguments))
        scope = asyncio.timeout(self.timeout)
        try:
            async with scope:
                return await self._call(kwargs)
        except TimeoutError:
            if scope.expired():
                raise ToolError(f"tool {self.name} timed out after {self.timeout:g} s") from None
            raise  # the tool's own TimeoutError, not ours

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation), as if undecorated."""
        return self.fn(*args, **kwargs)

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        if self._is_async:
            return await self.fn(**kwargs)
        result = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
            result = await result
        return result

    def _decode(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(arguments, str | bytes | bytearray):
            if not arguments.strip():
                return {}  # some models send "" for a tool without parameters
            try:
                arguments = json.loads(arguments)
            except ValueError as exc:
                raise self._arguments_error([f"the arguments are not valid JSON ({exc})"]) from None
        if not isinstance(arguments, Mapping):
            kind = type(arguments).__name__
            raise self._arguments_error([f"the arguments must be a JSON object, got {kind}"])
        return dict(arguments)

    def _validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._model is None:
            return arguments
        from pydantic import ValidationError

        try:
            validated = self._model.model_validate(arguments)
        except ValidationError as exc:
            raise self._arguments_error(_describe_errors(exc)) from None
        # Attributes, not model_dump(): nested models and enums reach the function as such.
        return {param: getattr(validated, field) for field, param in self._keywords.items()}

    def _arguments_error(self, problems: list[str]) -> ToolArgumentsError:
        return ToolArgumentsError(f"tool {self.name}: " + "; ".join(problems), problems=problems)

    # --- describing ---------------------------------------------------------------------------

    def schema(self) -> dict[str, Any]:
        """OpenAI-style ``{"type": "function", "function": {...}}`` description."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    def replace(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> FunctionTool:
        """A copy with some of name, description or timeout changed."""
        tool = copy.copy(self)
        if name is not None:
            if not _NAME.match(name):
                raise ValueError(
                    f"tool name {name!r} is not allowed: use 1-64 letters, digits, '_' or '-'"
                )
            tool.name = name
        if description is not None:
            tool.description = description
        if timeout is not None:
            tool.timeout = timeout
        return tool

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"


@overload
def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    read_only: bool = False,
    result_is_reply: bool = False,
    examples: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> FunctionTool: ...


@overload
def function_tool(
    fn: None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    read_only: bool = False,
    result_is_reply: bool = False,
    examples: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    read_only: bool = False,
    result_is_reply: bool = False,
    examples: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> Any:
    """Make a tool: ``function_tool(fn)``, ``@function_tool`` or ``@function_tool(name=...)``.

    On a method of an `Agent` subclass it declares a tool of every instance of that class.
    """

    def decorator(func: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(
            func,
            name=name,
            description=description,
            timeout=timeout,
            read_only=read_only,
            result_is_reply=result_is_reply,
            examples=examples,
        )

    return decorator(fn) if fn is not None else decorator


class ToolRegistry:
    """The tools an agent offers, by unique name, in registration order."""

    def __init__(self, tools: Iterable[Callable[..., Any] | FunctionTool] = ()) -> None:
        self._tools: dict[str, FunctionTool] = {}
        self.extend(tools)

    def register(
        self,
        fn: Callable[..., Any] | FunctionTool,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> FunctionTool:
        """Add a function or tool; returns the `FunctionTool`. A taken name is a ValueError."""
        tool = _as_tool(fn, name=name, description=description, timeout=timeout)
        self._check_free(tool.name)
        self._tools[tool.name] = tool
        return tool

    def extend(self, tools: Iterable[Callable[..., Any] | FunctionTool]) -> list[FunctionTool]:
        """Register several at once; nothing is added if any name is taken or repeated."""
        built = [_as_tool(t) for t in tools]
        seen: set[str] = set()
        for tool in built:
            self._check_free(tool.name)
            if tool.name in seen:
                raise ValueError(f"two tools are named {tool.name!r}; give one another name")
            seen.add(tool.name)
        self._tools.update((tool.name, tool) for tool in built)
        return built

    def unregister(self, name: str) -> None:
        """Remove the tool called ``name`` (a missing name is a KeyError)."""
        try:
            del self._tools[name]
        except KeyError:
            raise KeyError(f"no tool named {name!r} is registered") from None

    def get(self, name: str) -> FunctionTool | None:
        return self._tools.get(name)

    def schemas(self) -> list[dict[str, Any]]:
        """Every tool's OpenAI-style description, in registration order."""
        return [tool.schema() for tool in self._tools.values()]

    def _check_free(self, name: str) -> None:
        if name in self._tools:
            raise ValueError(
                f"a tool named {name!r} is already registered; "
                "register it under another name with name=..."
            )

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[FunctionTool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self._tools)})"


def method_tools(obj: object) -> list[FunctionTool]:
    """The tools declared on ``obj``'s class and its bases, bound to ``obj``.

    A tool is a `FunctionTool` class attribute (``@function_tool`` on a method). Attributes
    resolve as Python resolves them: a subclass's definition replaces its base's, and a plain
    method overriding a tool method means that name is no longer a tool. Base-class tools
    come first, in definition order.
    """
    found: dict[str, FunctionTool | None] = {}
    for cls in reversed(type(obj).__mro__):
        for attr, value in vars(cls).items():
            if isinstance(value, FunctionTool):
                found[attr] = value
            elif attr in found:
                found[attr] = None
    return [
        tool.bind(obj) if tool.is_method else tool for tool in found.values() if tool is not None
    ]


# --- building -----------------------------------------------------------------------------------


def _as_tool(
    fn: Callable[..., Any] | FunctionTool,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> FunctionTool:
    if isinstance(fn, FunctionTool):
        if fn.is_method:
            raise TypeError(
                f"tool {fn.name} is a method (its first parameter is self): declare it with "
                "@function_tool on an Agent subclass, whose instances register it bound to "
                "themselves, or register the bound method (instance.method)"
            )
        if name is None and description is None and timeout is None:
            return fn
        return fn.replace(name=name, description=description, timeout=timeout)
    tool = FunctionTool(fn, name=name, description=description, timeout=timeout)
    if tool.is_method:
        return _as_tool(tool)  # the same error
    return tool


def _takes_self(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is a function defined as a method: its first parameter is ``self``.

    Only plain functions qualify; a bound method has ``self`` already and shows no such
    parameter.
    """
    if not inspect.isfunction(fn):
        return False
    params = list(inspect.signature(fn).parameters.values())
    return (
        bool(params) and params[0].name == "self" and params[0].kind is not params[0].KEYWORD_ONLY
    )


def _is_async_callable(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _parse_docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's description and each argument's description (Google, NumPy or reST)."""
    doc = inspect.getdoc(fn)
    if not doc:
        return "", {}
    import docstring_parser

    parsed = docstring_parser.parse(doc)
    args = {p.arg_name: " ".join(p.description.split()) for p in parsed.params if p.description}
    return (parsed.description or "").strip(), args


def _arguments_model(
    fn: Callable[..., Any], tool_name: str, arg_docs: Mapping[str, str], *, skip_first: bool
) -> tuple[type[BaseModel], dict[str, str]]:
    """A pydantic model of ``fn``'s keyword arguments, and its field-to-parameter map.

    ``skip_first`` leaves out the first parameter (a method's ``self``).
    """
    from pydantic import ConfigDict, Field, create_model

    try:
        signature = inspect.signature(fn, eval_str=True)
    except NameError as exc:
        raise TypeError(
            f"tool {tool_name}: cannot resolve a type hint ({exc}); "
            "define the types it uses at module level"
        ) from exc
    fields: dict[str, Any] = {}
    keywords: dict[str, str] = {}
    params = list(signature.parameters.values())[1 if skip_first else 0 :]
    for index, param in enumerate(params):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(
                f"tool {tool_name}: parameter {param.name!r} must be a named parameter "
                "(no *args, **kwargs or positional-only parameters)"
            )
        annotation = Any if param.annotation is param.empty else param.annotation
        default = ... if param.default is param.empty else param.default
        extra: dict[str, Any] = {}
        doc = arg_docs.get(param.name)
        if doc and not _has_description(annotation, default):
            extra["description"] = doc
        # Fields get neutral names and the parameter name as alias, so a parameter may be
        # called e.g. "json" or "schema" without clashing with BaseModel's attributes.
        field = f"arg{index}"
        fields[field] = (Annotated[annotation, Field(alias=param.name, **extra)], default)
        keywords[field] = param.name
    try:
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="ignore", arbitrary_types_allowed=False),
            **fields,
        )
        model.model_json_schema()  # fail now, at registration, on a type JSON cannot describe
    except Exception as exc:
        raise TypeError(
            f"tool {tool_name}: its parameters cannot be described as JSON schema: {exc}"
        ) from exc
    return model, keywords


def _has_description(annotation: Any, default: Any) -> bool:
    """Whether an ``Annotated[..., Field(description=...)]`` or Field default says it already."""
    from pydantic.fields import FieldInfo

    metadata = list(get_args(annotation)[1:]) if get_origin(annotation) is Annotated else []
    metadata.append(default)
    return any(isinstance(m, FieldInfo) and m.description for m in metadata)


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's generated titles (noise in a prompt); keep descriptions and $defs."""
    out = {k: v for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {
                name: _clean_schema(s) if isinstance(s, dict) else s for name, s in out[key].items()
            }
    for key in _SUBSCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = _clean_schema(out[key])
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_clean_schema(s) if isinstance(s, dict) else s for s in out[key]]
    return out


def _describe_errors(error: ValidationError) -> list[str]:
    """One sentence per problem, naming the argument the way the model wrote it."""
    problems = []
    for item in error.errors(include_url=False):
        where = _location(item["loc"])
        if item["type"] == "missing":
            problems.append(f"argument {where} is required")
            continue
        message = item["msg"][:1].lower() + item["msg"][1:]
        got = repr(item.get("input"))
        if len(got) > 60:
            got = got[:57] + "..."
        problems.append(f"argument {where}: {message} (got {got})")
    return problems


def _location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"'{path}'"
