"""Tools from MCP (Model Context Protocol) servers, over stdio or streamable HTTP.

```python
async with MCPServerStdio("python", ["weather_server.py"]) as server:
    tools = await server.list_tools()          # FunctionTool objects, ready for an agent
    print(await tools[0].invoke({"city": "Paris"}))
```

Needs the optional extra: ``pip install "parley-core[mcp]"``.

Each server's connection lives in one background task that owns the SDK's context managers
(anyio requires them to be entered and left by the same task), so `connect` and `aclose` may
be called from different tasks, as an agent session does.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

try:
    import httpx2
    import mcp
    import mcp.types
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError
except ImportError as exc:
    raise ImportError(
        f'parley.mcp needs the MCP SDK ({exc}); install it with: pip install "parley-core[mcp]"',
        name="mcp",
    ) from exc

from parley.tools import FunctionTool, ToolError

__all__ = ["MCPServer", "MCPServerHTTP", "MCPServerStdio"]

logger = logging.getLogger("parley.mcp")

_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")

# The SDK's transports hand the session a pair of anyio streams.
Streams = tuple[Any, Any]


class MCPServer(ABC):
    """A connection to one MCP server; an async context manager.

    ``timeout`` (seconds) bounds each tool call made through the tools it lists;
    ``connect_timeout`` bounds start-up and the protocol handshake.
    """

    def __init__(
        self, *, name: str, timeout: float | None = None, connect_timeout: float = 30.0
    ) -> None:
        self.name = name
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._session: mcp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._closing = False

    @abstractmethod
    def _transport(self) -> AbstractAsyncContextManager[Streams]:
        """Open the transport's (read, write) streams."""

    # --- lifecycle ----------------------------------------------------------------------------

    async def connect(self) -> None:
        """Start the server connection and complete the MCP handshake (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self._stop = asyncio.Event()
        self._closing = False
        ready: asyncio.Future[mcp.ClientSession] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run(ready), name=f"parley-mcp:{self.name}")
        task.add_done_callback(self._on_done)
        self._task = task
        try:
            waiting: set[asyncio.Future[Any]] = {ready, task}
            await asyncio.wait(waiting, timeout=self.connect_timeout, return_when="FIRST_COMPLETED")
        except asyncio.CancelledError:
            await self._abandon(task)
            raise
        if ready.done() and not task.done():
            self._session = ready.result()
            return
        await self._abandon(task)
        if task.cancelled() or task.exception() is None:
            raise ConnectionError(
                f"MCP server {self.name} did not answer within {self.connect_timeout:g} s"
            )
        cause = _leaf(task.exception())
        raise ConnectionError(f"could not connect to MCP server {self.name}: {cause}") from cause

    async def _abandon(self, task: asyncio.Task[None]) -> None:
        """Stop a connection attempt that has not finished its handshake."""
        self._task = None
        self._closing = True
        if not task.done():
            task.cancel()  # the transport's own clean-up still stops the server process
        await asyncio.gather(task, return_exceptions=True)

    async def _run(self, ready: asyncio.Future[mcp.ClientSession]) -> None:
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            session = await stack.enter_async_context(mcp.ClientSession(read, write))
            await session.initialize()
            ready.set_result(session)
            await self._stop.wait()

    def _on_done(self, task: asyncio.Task[None]) -> None:
        was_connected, self._session = self._session is not None, None
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, so asyncio never logs it as unhandled
        if was_connected and not self._closing:  # a failed connect raises in connect() instead
            logger.warning("MCP server %s disconnected: %s", self.name, _leaf(error))

    async def aclose(self) -> None:
        """Close the session and the transport (stops a stdio server process); idempotent."""
        task, self._task = self._task, None
        self._session = None
        if task is None:
            return
        self._closing = True
        self._stop.set()
        _, pending = await asyncio.wait({task}, timeout=10.0)
        if pending:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- tools --------------------------------------------------------------------------------

    async def list_tools(self) -> list[FunctionTool]:
        """The server's tools as `FunctionTool` objects that call back into this server."""
        session = self._require_session()
        listed: list[mcp.types.Tool] = []
        cursor: str | None = None
        while True:
            params = mcp.types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return [self._function_tool(tool) for tool in listed]

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Call the server's tool ``name``; returns its text, raises `ToolError` on failure."""
        session = self._require_session()
        try:
            result = await session.call_tool(name, dict(arguments))
        except MCPError as exc:
            raise ToolError(f"MCP server {self.name}: {exc.message}") from exc
        if not isinstance(result, mcp.types.CallToolResult):
            raise ToolError(
                f"MCP server {self.name}: tool {name} asked for input Parley cannot give"
            )
        text = _text_of(result)
        if result.is_error:
            raise ToolError(text or f"tool {name} failed on MCP server {self.name}")
        return text

    def _function_tool(self, tool: mcp.types.Tool) -> FunctionTool:
        remote_name = tool.name

        async def call(**arguments: Any) -> str:
            return await self.call_tool(remote_name, arguments)

        return FunctionTool(
            call,
            name=_INVALID_NAME_CHARS.sub("_", remote_name)[:64],
            description=tool.description or tool.title or "",
            parameters=tool.input_schema,
            timeout=self.timeout,
            read_only=bool(tool.annotations and tool.annotations.read_only_hint),
        )

    def _require_session(self) -> mcp.ClientSession:
        if self._session is None:
            raise ToolError(
                f"MCP server {self.name} is not connected; use 'async with' or await connect()"
            )
        return self._session

    def __repr__(self) -> str:
        state = "connected" if self._session is not None else "not connected"
        return f"{type(self).__name__}({self.name!r}, {state})"


class MCPServerStdio(MCPServer):
    """An MCP server that Parley starts as a subprocess and talks to over stdin/stdout.

    ``env`` adds variables to a minimal safe environment (the SDK does not pass the whole
    parent environment to the server).
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | Path | None = None,
        name: str | None = None,
        timeout: float | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            name=name or " ".join([command, *args]),
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        self.command = command
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd

    def _transport(self) -> AbstractAsyncContextManager[Streams]:
        params = mcp.StdioServerParameters(
            command=self.command, args=self.args, env=self.env, cwd=self.cwd
        )
        return mcp.stdio_client(params)


class MCPServerHTTP(MCPServer):
    """An MCP server reached over streamable HTTP at ``url`` (e.g. ``http://host:8000/mcp``)."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        super().__init__(name=name or url, timeout=timeout, connect_timeout=connect_timeout)
        self.url = url
        self.headers = dict(headers) if headers is not None else None

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[Streams]:
        # The SDK leaves closing a caller-provided HTTP client to the caller. Its transports'
        # defaults: 30 s, but a read may wait 300 s (a server holds a response stream open).
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=self.headers, timeout=timeout) as http,
            streamable_http_client(self.url, http_client=http) as streams,
        ):
            yield streams[0], streams[1]


def _text_of(result: mcp.types.CallToolResult) -> str:
    """The result's text for the model; other content kinds are named, not inlined."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp.types.TextContent):
            parts.append(block.text)
        else:
            parts.append(f"[{block.type} content]")
    if not parts and result.structured_content is not None:
        import json

        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def _leaf(error: BaseException | None) -> BaseException | None:
    """The first real error inside anyio's exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error
