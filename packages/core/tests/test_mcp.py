"""MCP tools against real local MCP servers: one over stdio, one over streamable HTTP."""

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn  # comes with mcp
from mcp.server.mcpserver import MCPServer as SDKServer
from mcp.server.mcpserver.exceptions import ToolError as SDKToolError
from parley.mcp import MCPServerHTTP, MCPServerStdio
from parley.tools import FunctionTool, ToolArgumentsError, ToolError, ToolRegistry

SERVER_SCRIPT = textwrap.dedent(
    '''
    import os

    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp_types import ToolAnnotations

    server = MCPServer("parley-test")


    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b


    @server.tool(name="weather.today", annotations=ToolAnnotations(read_only_hint=True))
    async def weather(city: str) -> str:
        """Today's weather for a city."""
        return f"Sunny in {city}"


    @server.tool()
    def refuse(reason: str) -> str:
        """Always fails."""
        raise ToolError(f"refused: {reason}")


    @server.tool()
    def crash() -> str:
        """Ends the server process mid-call."""
        os._exit(1)


    @server.tool()
    def secret() -> str:
        """Reads a variable the client passed in the environment."""
        return os.environ.get("PARLEY_SECRET", "<unset>")


    if __name__ == "__main__":
        server.run()
    '''
)


def _tools_by_name(tools: list[FunctionTool]) -> dict[str, FunctionTool]:
    return {tool.name: tool for tool in tools}


# --- stdio --------------------------------------------------------------------------------------


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "mcp_test_server.py"
    path.write_text(SERVER_SCRIPT)
    return path


async def test_stdio_server_tools(server_script: Path) -> None:
    server = MCPServerStdio(sys.executable, [str(server_script)], env={"PARLEY_SECRET": "s3"})
    async with server:
        tools = _tools_by_name(await server.list_tools())
        # MCP allows dots in names, OpenAI-style APIs do not: the local name is sanitized.
        assert set(tools) == {"add", "weather_today", "refuse", "crash", "secret"}
        add = tools["add"]
        assert add.description == "Add two integers."
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.parameters["required"] == ["a", "b"]
        assert add.schema()["function"]["name"] == "add"
        # readOnlyHint: a reply answered ahead may call it before the turn is committed.
        assert tools["weather_today"].read_only and not add.read_only

        assert await add.invoke('{"a": 2, "b": 40}') == "42"
        assert await tools["weather_today"].invoke({"city": "Paris"}) == "Sunny in Paris"
        assert await tools["secret"].invoke({}) == "s3"

        with pytest.raises(ToolError, match="refused: no reason") as caught:
            await tools["refuse"].invoke({"reason": "no reason"})
        assert not isinstance(caught.value, ToolArgumentsError)

        # The server validates; its complaint comes back as a tool error for the model.
        with pytest.raises(ToolError, match="add"):
            await add.invoke({"a": "many"})
        # Text that is not JSON never reaches the server.
        with pytest.raises(ToolArgumentsError, match="tool add: the arguments are not valid JSON"):
            await add.invoke("{a: 1")

        registry = ToolRegistry()
        registry.extend(tools.values())
        assert len(registry) == 5
    assert "not connected" in repr(server)
    with pytest.raises(ToolError, match="is not connected"):
        await add.invoke({"a": 1, "b": 2})


async def test_stdio_server_that_dies_mid_call(server_script: Path) -> None:
    async with MCPServerStdio(sys.executable, [str(server_script)], name="fragile") as server:
        tools = _tools_by_name(await server.list_tools())
        with pytest.raises(ToolError, match="MCP server fragile: "):
            await tools["crash"].invoke({})
        # Later calls fail the same clear way instead of hanging.
        with pytest.raises(ToolError, match="MCP server fragile"):
            await tools["add"].invoke({"a": 1, "b": 2})


async def test_stdio_server_that_cannot_start(tmp_path: Path) -> None:
    broken = tmp_path / "broken_server.py"
    broken.write_text("raise SystemExit(3)\n")
    server = MCPServerStdio(sys.executable, [str(broken)], connect_timeout=30)
    with pytest.raises(ConnectionError, match="could not connect to MCP server"):
        await server.connect()
    await server.aclose()  # harmless after a failed connect


async def test_stdio_server_that_never_answers(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    silent = tmp_path / "silent_server.py"
    silent.write_text(
        f"import os, pathlib, time\npathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    server = MCPServerStdio(sys.executable, [str(silent)], connect_timeout=2)
    with pytest.raises(ConnectionError, match=r"did not answer within 2 s"):
        await server.connect()
    # Giving up stops the server process too.
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_stdio_server_missing_command() -> None:
    server = MCPServerStdio("/nonexistent/parley-mcp-server")
    with pytest.raises(ConnectionError, match="could not connect to MCP server"):
        await server.connect()


async def test_connect_and_close_from_different_tasks(server_script: Path) -> None:
    server = MCPServerStdio(sys.executable, [str(server_script)], timeout=10)
    await asyncio.create_task(server.connect())
    tools = _tools_by_name(await server.list_tools())
    assert tools["add"].timeout == 10
    assert await tools["add"].invoke({"a": 1, "b": 1}) == "2"
    await asyncio.create_task(server.aclose())
    await server.aclose()  # idempotent


# --- streamable HTTP ----------------------------------------------------------------------------


class HeaderRecorder:
    """ASGI middleware: remembers request headers and demands the bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        self.seen: list[dict[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode(): v.decode() for k, v in scope["headers"]}
            self.seen.append(headers)
            if headers.get("authorization") != f"Bearer {self.token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


def _http_server() -> SDKServer:
    server = SDKServer("parley-http-test")

    @server.tool()
    def multiply(a: float, b: float) -> float:
        """Multiply two numbers."""
        return a * b

    @server.tool()
    async def fail() -> str:
        """Always fails."""
        raise SDKToolError("the service is down")

    return server


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[str, HeaderRecorder]]:
    """The MCP server on uvicorn at 127.0.0.1, on a free port the OS picks."""
    app = HeaderRecorder(_http_server().streamable_http_app(), token="t0ken")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # raises why it stopped
            pytest.fail("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/mcp", app
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def test_http_server_tools(http_server: tuple[str, HeaderRecorder]) -> None:
    url, recorder = http_server
    async with MCPServerHTTP(url, headers={"Authorization": "Bearer t0ken"}) as server:
        tools = _tools_by_name(await server.list_tools())
        assert set(tools) == {"multiply", "fail"}
        assert tools["multiply"].description == "Multiply two numbers."
        assert await tools["multiply"].invoke('{"a": 6, "b": 7}') == "42.0"
        with pytest.raises(ToolError, match="the service is down"):
            await tools["fail"].invoke({})
    assert recorder.seen
    assert all(h.get("authorization") == "Bearer t0ken" for h in recorder.seen)


async def test_http_server_rejecting_the_client(http_server: tuple[str, HeaderRecorder]) -> None:
    url, _ = http_server
    server = MCPServerHTTP(url, headers={"Authorization": "Bearer wrong"}, connect_timeout=30)
    with pytest.raises(ConnectionError, match="could not connect to MCP server"):
        await server.connect()


async def test_http_server_not_listening() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    server = MCPServerHTTP(f"http://127.0.0.1:{port}/mcp", connect_timeout=30)
    with pytest.raises(ConnectionError, match="could not connect to MCP server"):
        await server.connect()


# --- without the extra --------------------------------------------------------------------------


def test_import_without_the_sdk_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['mcp'] = None  # as if the SDK were not installed\n"
        "try:\n"
        "    import parley.mcp\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "parley-core[mcp]"' in out.stdout


# --- in a session -------------------------------------------------------------------------------


async def test_agent_uses_mcp_tools_in_a_session(server_script: Path) -> None:
    from parley import Agent, AgentSession, CascadingPipeline
    from parley.chat import ToolCall
    from parley.edge import Call
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge, Reply

    server = MCPServerStdio(sys.executable, [str(server_script)])
    agent = Agent("Use tools.", mcp_servers=[server])
    llm = FakeLLM([Reply(tool_calls=[ToolCall("weather_today", '{"city": "Rome"}')]), "Sunny."])
    session = AgentSession(agent, CascadingPipeline(stt=FakeSTT(None), llm=llm, tts=FakeTTS()))
    edge = InMemoryEdge(realtime_playout=False)
    await session.start(await edge.join(Call("default", "mcp", edge), agent.agent_user))
    assert "weather_today" in llm_tools_offered(session)
    handle = session.generate_reply("weather in rome?")
    await handle
    results = [m.content for m in agent.chat_ctx if m.role == "tool"]
    assert results == ["Sunny in Rome"]
    assert "weather_today" in llm.calls[0].tools
    await session.close()
    assert server._task is None or server._task.done(), "the session closes its MCP servers"


def llm_tools_offered(session: object) -> list[str]:
    return [tool.name for tool in session.tools()]  # type: ignore[attr-defined]
