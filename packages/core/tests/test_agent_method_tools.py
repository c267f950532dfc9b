"""``@function_tool`` on methods of an `Agent` subclass: tools of each instance, bound to it."""

from __future__ import annotations

import threading
from typing import Literal

import pytest
from parley import Agent, AgentSession, CascadingPipeline, function_tool
from parley.edge import Call
from parley.events import AgentTurnEnded, SessionEvent, ToolCalled
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, Reply, tool_call, until
from parley.tools import FunctionTool, ToolRegistry, method_tools


class Weather(Agent):
    def __init__(self, city_prefix: str = "", **kwargs: object) -> None:
        super().__init__("You report the weather.", **kwargs)  # type: ignore[arg-type]
        self.city_prefix = city_prefix
        self.lookups: list[str] = []
        self.thread: str | None = None

    @function_tool
    async def get_weather(self, location: str, unit: Literal["c", "f"] = "c") -> str:
        """Get the current weather for a location.

        Args:
            location: City name, e.g. "Paris".
            unit: Temperature unit.
        """
        self.lookups.append(location)
        return f"sunny in {self.city_prefix}{location} ({unit})"

    @function_tool(name="local_time", description="The local time somewhere.")
    def time_in(self, city: str) -> str:
        self.thread = threading.current_thread().name
        return f"noon in {self.city_prefix}{city}"

    async def not_a_tool(self, x: int) -> int:
        return x


async def test_decorated_methods_are_tools_of_each_instance_with_their_schema() -> None:
    agent = Weather()
    assert [tool.name for tool in agent.tools] == ["get_weather", "local_time"]
    weather = agent.tools.get("get_weather")
    assert weather is not None
    assert weather.description == "Get the current weather for a location."
    params = weather.parameters
    assert set(params["properties"]) == {"location", "unit"}  # no ``self``
    assert params["required"] == ["location"]
    assert params["properties"]["location"]["description"] == 'City name, e.g. "Paris".'
    assert params["properties"]["unit"]["enum"] == ["c", "f"]
    local_time = agent.tools.get("local_time")
    assert local_time is not None and local_time.description == "The local time somewhere."
    assert list(local_time.parameters["properties"]) == ["city"]


async def test_method_tools_run_with_self_sync_and_async() -> None:
    first, second = Weather("North "), Weather("South ")
    weather = first.tools.get("get_weather")
    assert weather is not None
    assert await weather.invoke('{"location": "Paris"}') == "sunny in North Paris (c)"
    assert first.lookups == ["Paris"] and second.lookups == []
    other = second.tools.get("local_time")
    assert other is not None
    assert await other.invoke({"city": "Oslo"}) == "noon in South Oslo"
    # a sync method runs off the event loop, like any sync tool
    assert second.thread is not None and second.thread != threading.current_thread().name


async def test_a_method_tool_can_still_be_called_as_a_method() -> None:
    agent = Weather("X")
    assert isinstance(agent.get_weather, FunctionTool)
    assert await agent.get_weather("Rome") == "sunny in XRome (c)"
    assert agent.time_in("Lima") == "noon in XLima"
    assert isinstance(Weather.__dict__["get_weather"], FunctionTool)


async def test_method_tools_come_alongside_tools_passed_in() -> None:
    def get_news(topic: str) -> str:
        """Headlines about a topic."""
        return f"news about {topic}"

    agent = Weather(tools=[get_news])
    assert [tool.name for tool in agent.tools] == ["get_weather", "local_time", "get_news"]
    assert [s["function"]["name"] for s in agent.tools.schemas()][-1] == "get_news"


def test_a_name_clash_with_tools_passed_in_is_an_error_at_construction() -> None:
    @function_tool
    def get_weather(location: str) -> str:
        """Another weather tool."""
        return location

    with pytest.raises(ValueError, match="get_weather") as info:
        Weather(tools=[get_weather])
    assert "Weather.get_weather" in str(info.value)
    assert "name=" in str(info.value)

    def local_time(city: str) -> str:  # a plain function clashing with a renamed method tool
        return city

    with pytest.raises(ValueError, match="local_time"):
        Weather(tools=[local_time])


def test_passing_the_agent_s_own_method_tool_again_is_not_a_clash() -> None:
    class Again(Agent):
        def __init__(self) -> None:
            super().__init__("x", tools=[self.lookup])

        @function_tool
        def lookup(self, key: str) -> str:
            """Look a key up."""
            return key

    assert [tool.name for tool in Again().tools] == ["lookup"]


async def test_a_subclass_overriding_a_tool_method_wins() -> None:
    class Rainy(Weather):
        @function_tool
        async def get_weather(self, location: str) -> str:
            """Always rain."""
            return f"rain in {location}"

        async def time_in(self, city: str) -> str:  # type: ignore[override]
            return "not a tool any more"

        @function_tool
        async def get_forecast(self, days: int) -> str:
            """The forecast."""
            return f"{days} days of rain"

    agent = Rainy()
    assert [tool.name for tool in agent.tools] == ["get_weather", "get_forecast"]
    weather = agent.tools.get("get_weather")
    assert weather is not None and weather.description == "Always rain."
    assert await weather.invoke({"location": "Bergen"}) == "rain in Bergen"
    assert set(weather.parameters["properties"]) == {"location"}
    assert "local_time" not in agent.tools


def test_two_methods_declaring_one_tool_name_is_an_error() -> None:
    class Twice(Agent):
        @function_tool(name="lookup")
        def first(self, key: str) -> str:
            return key

        @function_tool(name="lookup")
        def second(self, key: str) -> str:
            return key

    with pytest.raises(ValueError, match="lookup"):
        Twice()


def test_an_unbound_method_tool_cannot_be_registered_on_its_own() -> None:
    with pytest.raises(TypeError, match="method"):
        ToolRegistry([Weather.get_weather])
    with pytest.raises(TypeError, match="method"):
        Agent("x", tools=[Weather.__dict__["get_weather"]])

    def stray(self: object, x: int) -> int:
        return x

    with pytest.raises(TypeError, match="self"):
        ToolRegistry().register(stray)


async def test_an_unbound_method_tool_refuses_to_run() -> None:
    from parley.tools import ToolError

    with pytest.raises(ToolError, match="never bound"):
        await Weather.get_weather.invoke({"location": "Paris"})


def test_method_tools_lists_the_bound_tools() -> None:
    agent = Weather()
    tools = method_tools(agent)
    assert [t.name for t in tools] == ["get_weather", "local_time"]
    assert all(not t.is_method for t in tools)
    assert all(getattr(t.fn, "__self__", None) is agent for t in tools)
    assert method_tools(Agent("plain")) == []


async def test_the_model_calls_a_method_tool_through_a_session() -> None:
    agent = Weather("Greater ")
    llm = FakeLLM([Reply(tool_calls=[tool_call("get_weather", location="Paris")]), "It is sunny."])
    pipeline = CascadingPipeline(stt=FakeSTT(), llm=llm, tts=FakeTTS(), vad=FakeVAD())
    session = AgentSession(agent, pipeline)
    events: list[SessionEvent] = []
    session.events.subscribe(events.append, SessionEvent)
    edge = InMemoryEdge(realtime_playout=False)
    connection = await edge.join(Call("default", "tools", edge), agent.agent_user)
    await session.start(connection)
    try:
        await session.generate_reply("weather in paris")
        await until(lambda: any(isinstance(e, AgentTurnEnded) for e in events))
        called = [e for e in events if isinstance(e, ToolCalled)]
        assert called and called[0].result == "sunny in Greater Paris (c)"
        assert not called[0].error
        assert agent.lookups == ["Paris"]  # the tool ran with ``self`` being this agent
        assert "get_weather" in llm.calls[0].tools
        tool_message = next(m for m in llm.calls[1].ctx if m.role == "tool")
        assert tool_message.content == "sunny in Greater Paris (c)"
    finally:
        await session.close()
