"""`parley.logs`: levels for the parley tree apart from other libraries, JSON lines, and the
session's ids on the records its tasks emit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from parley import Agent, AgentSession, CascadingPipeline, logs
from parley.chat import ChatContext
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge

PROVIDER = logging.getLogger("parley.testprovider")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    names = ("", logs.ROOT, logs.APP, "httpcore", PROVIDER.name)
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_the_parley_tree_and_the_libraries_have_their_own_levels() -> None:
    logs.configure("DEBUG", "WARNING", stream=io.StringIO())
    assert logging.getLogger("parley.openai").isEnabledFor(logging.DEBUG)
    assert logging.getLogger(logs.APP).isEnabledFor(logging.DEBUG)  # the script being run
    assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)
    assert logging.getLogger("aioice.ice").isEnabledFor(logging.WARNING)

    logs.configure("ERROR", "DEBUG", stream=io.StringIO())
    assert not logging.getLogger("parley.anthropic").isEnabledFor(logging.WARNING)
    assert logging.getLogger("httpcore").isEnabledFor(logging.DEBUG)
    with pytest.raises(ValueError, match="unknown log level 'loud'; use one of DEBUG"):
        logs.configure("loud")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure(log_format="xml")


@pytest.mark.usefixtures("restore_logging")
def test_configure_installs_one_handler_and_switches_its_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    text = io.StringIO()
    logs.configure("INFO", stream=text)
    logging.getLogger("parley.x").info("plain %s", "line")
    assert text.getvalue().rstrip().endswith("INFO    parley.x: plain line")

    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    out = io.StringIO()
    logs.configure("INFO", stream=out)  # the same handler, now JSON (from the environment)
    assert sum(isinstance(h, logs.ParleyHandler) for h in root.handlers) == 1
    logging.getLogger("parley.x").warning("as %s", "json", extra={"attempt": 2})
    logging.getLogger("httpcore").info("a library below its level")
    [entry] = _lines(out)
    assert entry["level"] == "WARNING" and entry["logger"] == "parley.x"
    assert entry["message"] == "as json" and entry["attempt"] == 2
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "session_id" not in entry and "exception" not in entry  # outside any session


def test_json_lines_carry_the_exception() -> None:
    out = io.StringIO()
    handler = logs.ParleyHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("parley.testjson")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("provider said no")
        except RuntimeError:
            logger.exception("the call failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    [entry] = _lines(out)
    assert entry["message"] == "the call failed" and entry["level"] == "ERROR"
    assert entry["exception"].startswith("Traceback") and "provider said no" in entry["exception"]


def test_ids_follow_the_context_and_turns_get_their_own() -> None:
    text = logs.TextFormatter()
    record = logging.LogRecord("parley.x", logging.INFO, "f", 1, "hello", None, None)
    assert text.format(record).endswith("parley.x: hello")

    async def inside() -> tuple[dict[str, Any], dict[str, Any], str]:
        logs.bind("sess_a", "call-a")
        turn = await asyncio.create_task(_ids(), context=logs.turn_context(7))
        return logs.current_ids(), turn, text.format(record)

    outer, turn, line = asyncio.run(inside())
    assert outer == {"session_id": "sess_a", "call_id": "call-a"}
    assert turn == {"session_id": "sess_a", "call_id": "call-a", "turn_id": 7}
    assert line.endswith("parley.x: hello [sess_a call=call-a]")
    assert logs.current_ids() == {}  # asyncio.run ran in a copy of this context


async def _ids() -> dict[str, Any]:
    return logs.current_ids()


async def test_a_providers_records_carry_its_sessions_ids_and_sessions_do_not_mix() -> None:
    out = io.StringIO()
    handler = logs.ParleyHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    PROVIDER.addHandler(handler)
    PROVIDER.setLevel(logging.INFO)

    both_asked = asyncio.Barrier(2)

    async def respond(ctx: ChatContext) -> str:
        PROVIDER.info("request")
        last = ctx.last("user")
        if last is not None and last.content == "how are you?":
            await both_asked.wait()  # the two sessions' first turns overlap
        PROVIDER.info("response")
        return "Fine."

    async def one_session(call_id: str) -> AgentSession:
        edge = InMemoryEdge(realtime_playout=False)
        agent = Agent("You are terse.", edge=edge)
        pipeline = CascadingPipeline(
            stt=FakeSTT([]), llm=FakeLLM(respond=respond), tts=FakeTTS(), vad=FakeVAD()
        )
        session = AgentSession(agent, pipeline)
        connection = await edge.join(await agent.create_call("default", call_id), agent.agent_user)
        await session.start(connection)
        await session.generate_reply("how are you?")
        await session.generate_reply("and now?")
        await session.close()
        return session

    try:
        async with asyncio.timeout(30):  # only catches a hang
            first, second = await asyncio.gather(one_session("call-a"), one_session("call-b"))
    finally:
        PROVIDER.removeHandler(handler)
    entries = _lines(out)
    assert len(entries) == 8
    assert {e["session_id"] for e in entries} == {first.id, second.id}
    assert [e["message"] for e in entries[:2]] == ["request", "request"]  # interleaved
    for session, call_id in ((first, "call-a"), (second, "call-b")):
        mine = [e for e in entries if e["session_id"] == session.id]
        assert {e["call_id"] for e in mine} == {call_id}
        assert [e["turn_id"] for e in mine] == [1, 1, 2, 2]
