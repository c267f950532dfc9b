"""A Parley server with the Twilio routes on a real port, in the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from parley import Agent, AgentLauncher
from parley.session import AgentSession
from parley_server import Runner, ServeOptions

TOKEN = "test-auth-token"
ACCOUNT = "AC" + "1" * 32
API_BASE = "https://api.twilio.test"
NUMBER = "+15550001111"


@dataclass
class PhoneServer:
    launcher: AgentLauncher
    base: str  # http://127.0.0.1:PORT
    sessions: dict[str, AgentSession] = field(default_factory=dict)

    @property
    def media_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/twilio/media"

    @property
    def voice_url(self) -> str:
        return self.base + "/twilio/voice"


@asynccontextmanager
async def phone_server(
    build_agent: Callable[[], Awaitable[Agent]],
    *,
    join_call: Callable[..., Awaitable[None]] | None = None,
    options: ServeOptions | None = None,
    **launcher_options: Any,
) -> AsyncIterator[PhoneServer]:
    """Serve until the block ends; the launcher runs one session per phone call.

    ``join_call``: the app's own (e.g. an example's); by default the agent joins and waits.
    Either way `PhoneServer.sessions` has each call's session once it has started."""
    sessions: dict[str, AgentSession] = {}

    async def create_agent(**params: Any) -> Agent:
        return await build_agent()

    async def join_and_wait(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)):
            await agent.finish()

    join = join_call or join_and_wait

    async def recorded(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async def note() -> None:
            while agent.session is None:
                await asyncio.sleep(0.005)
            sessions[call_id] = agent.session

        noting = asyncio.ensure_future(note())
        try:
            await join(agent, call_type, call_id, **params)
        finally:
            noting.cancel()
            await asyncio.gather(noting, return_exceptions=True)

    launcher_options.setdefault("warm_up", False)
    launcher_options.setdefault("drain_timeout", 0.2)
    launcher = AgentLauncher(create_agent, recorded, **launcher_options)
    app = Runner(launcher, options or ServeOptions()).fast_api
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield PhoneServer(launcher, f"http://127.0.0.1:{port}", sessions)
    finally:
        server.should_exit = True
        await serving
        sock.close()
