"""An agent on the testing kit's fake parts, served by a Runner: the server tests run this
file as a real process (``python parley_server_test_agent.py serve --port N``).

Environment knobs: ``PARLEY_TEST_TOKEN`` (permission callbacks require ``Authorization:
Bearer <token>``: 401 without it, 403 with another), ``PARLEY_TEST_MAX_SESSIONS``,
``PARLEY_TEST_PER_CALL``, ``PARLEY_TEST_DRAIN_TIMEOUT`` (s), ``PARLEY_TEST_CORS_ORIGIN``,
``PARLEY_TEST_STUCK`` (``create``: create_agent never returns; ``join``: join_call never
starts the session; ``ignore_cancel``: create_agent never returns and ignores cancellation).
A custom route, ``GET /custom/hello``, is added through ``runner.fast_api``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from fastapi import Header, HTTPException
from parley import Agent, AgentLauncher
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge
from parley_server import Runner, ServeOptions, allow_all

logger = logging.getLogger("parley.test_agent")


async def stuck(where: str, ignore_cancel: bool = False) -> None:
    logger.info("test agent is stuck in %s", where)
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not ignore_cancel:
                raise


async def create_agent(**params: Any) -> Agent:
    mode = os.environ.get("PARLEY_TEST_STUCK")
    if mode in ("create", "ignore_cancel"):
        await stuck("create_agent", ignore_cancel=mode == "ignore_cancel")
    if params.get("fail_create"):
        raise RuntimeError("create_agent was asked to fail")
    return Agent(
        "You are a test agent.",
        edge=InMemoryEdge(),
        llm=FakeLLM(["Hello!"]),
        tts=FakeTTS(),
        stt=FakeSTT(None),
    )


async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
    logger.info("test agent joins call %s with params %s", call_id, sorted(params))
    if os.environ.get("PARLEY_TEST_STUCK") == "join":
        await stuck("join_call")
    call = await agent.create_call(call_type, call_id)
    async with agent.join(call):
        await agent.finish()


def require_token(call_id: str, authorization: str | None = Header(default=None)) -> None:
    token = os.environ["PARLEY_TEST_TOKEN"]
    if authorization is None:
        raise HTTPException(
            401, "send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    if authorization != f"Bearer {token}":
        raise HTTPException(403, f"this token may not use call {call_id!r}")


def _number(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def build_runner() -> Runner:
    check = require_token if os.environ.get("PARLEY_TEST_TOKEN") else allow_all
    origin = os.environ.get("PARLEY_TEST_CORS_ORIGIN")
    options = ServeOptions(
        can_start_session=check,
        can_close_session=check,
        can_view_session=check,
        can_list_sessions=check,
        cors_allow_origins=[origin] if origin else [],
    )
    launcher = AgentLauncher(
        create_agent,
        join_call,
        warm_up=False,
        max_concurrent_sessions=_number("PARLEY_TEST_MAX_SESSIONS"),
        max_sessions_per_call=_number("PARLEY_TEST_PER_CALL"),
        drain_timeout=float(os.environ.get("PARLEY_TEST_DRAIN_TIMEOUT", "60")),
    )
    runner = Runner(launcher, options)

    @runner.fast_api.get("/custom/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return runner


if __name__ == "__main__":
    build_runner().cli()
