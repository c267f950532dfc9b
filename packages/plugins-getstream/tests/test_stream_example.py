"""examples/stream_agent.py, the Vision Agents example with ``getstream.Edge()``: built as the
launcher builds it, its ``join_call`` run against the fakes (the SDK's joined call faked,
Stream's REST API under respx), a conversation through it, and the Runner's demo link."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import respx
from fake_stream import API_KEY, API_SECRET, FakeJoin, FakeStreamAPI
from parley import AgentLauncher
from parley.testing import until
from parley_getstream import StreamConnection, StreamEdge

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stream_agent.py"

pytestmark = pytest.mark.filterwarnings(
    "ignore:Missing value of non-optional type settings:RuntimeWarning"
)


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stream_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stream_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStreamAPI]:
    monkeypatch.setenv("STREAM_API_KEY", API_KEY)
    monkeypatch.setenv("STREAM_API_SECRET", API_SECRET)
    monkeypatch.delenv("STREAM_BASE_URL", raising=False)
    monkeypatch.setenv("PARLEY_EXAMPLE_PARTS", "fake")
    with respx.mock(assert_all_called=False) as router:
        yield FakeStreamAPI(router)


@pytest.fixture
def join(monkeypatch: pytest.MonkeyPatch) -> FakeJoin:
    """`getstream.Edge()` as the example builds it joins calls through this fake."""
    fake = FakeJoin()
    monkeypatch.setattr("parley_getstream.edge.sdk_join", fake)
    return fake


async def test_the_example_converses_on_a_stream_call(
    stream_api: FakeStreamAPI, join: FakeJoin
) -> None:
    example = load_example()
    agent = await example.create_agent()
    assert isinstance(agent.edge, StreamEdge)
    running = asyncio.create_task(example.join_call(agent, "default", "example-call"))
    rtc = await join.wait()
    await until(lambda: agent.session is not None and agent.session.metrics.turns == 1)
    session = agent.session
    assert session is not None and isinstance(session.connection, StreamConnection)
    greeted = rtc.sent.seconds
    assert greeted > 0  # the greeting went out on the published track

    user = rtc.join("user-1", "Ada")
    await rtc.speak(user, 0.6)
    await rtc.pause(user, 0.6)
    await until(lambda: session.metrics.turns == 2)
    heard = "What is the weather in Paris?"
    assert agent.llm.calls[-1].last_user_text == heard
    await until(lambda: rtc.sent.seconds > greeted)
    await until(
        lambda: any(
            e["role"] == "agent" and e["final"] and e["text"] == f"You said: {heard}"
            for e in stream_api.custom_events("transcript")
        )
    )
    assert "get_weather" in [tool.name for tool in agent.all_tools()]

    rtc.leave_call(user)
    await session.close()  # as the launcher does when the agent is alone
    await asyncio.wait_for(running, 10)
    assert rtc.left
    assert stream_api.calls["default:example-call"]["created_by"]["id"] == "agent"


async def test_the_runner_opens_streams_demo_app_for_the_call(
    stream_api: FakeStreamAPI, join: FakeJoin
) -> None:
    from parley import Runner

    example = load_example()
    launcher = AgentLauncher(
        create_agent=example.create_agent, join_call=example.join_call, warm_up=False
    )
    runner = Runner(launcher)
    await launcher.start()
    try:
        session = await launcher.start_session("demo-call")
        base = "http://127.0.0.1:8000"
        page = runner.demo_url(base, "demo-call", session)
        assert page == f"{base}/getstream/join/demo-call"  # what `run` prints and opens
        transport = httpx.ASGITransport(app=runner.fast_api)
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            opened = await http.get("/getstream/join/demo-call")
        assert opened.status_code == 307
        link = opened.headers["location"]
        assert link.startswith("https://getstream.io/video/demos/join/demo-call?")
        assert f"api_key={API_KEY}" in link and "token=" in link
    finally:
        await launcher.stop(drain_timeout=0)
