"""Phone calls end to end against a real server and a fake Twilio on a real WebSocket:
signatures, TwiML, the Media Streams protocol both ways, DTMF, hang-ups from both sides,
refused starts and outbound calls (Twilio's REST API mocked with respx)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
import respx
import websockets
from fake_twilio import FakePhoneCall, post_webhook
from fastapi import Header
from parley import Agent
from parley.events import Interrupted
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, until
from parley_server import ServeOptions
from parley_twilio.edge import TwilioEdge
from parley_twilio.events import DTMFReceived
from parley_twilio.line import default_lines
from phone_server import ACCOUNT, API_BASE, NUMBER, TOKEN, PhoneServer, phone_server

HANG_UP = re.compile(rf"{re.escape(API_BASE)}/2010-04-01/Accounts/{ACCOUNT}/Calls/(CA\w+)\.json")


def speech(seconds: float, frequency: float = 300.0) -> np.ndarray:
    t = np.arange(round(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16)


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("TWILIO_API_BASE", API_BASE)
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", NUMBER)
    monkeypatch.delenv("TWILIO_PUBLIC_URL", raising=False)


@pytest.fixture
async def twilio_api(twilio_env: None) -> AsyncIterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        mock.post(url__regex=HANG_UP.pattern).respond(200, json={"status": "completed"})
        yield mock


async def talker() -> Agent:
    return Agent(
        "test",
        edge=TwilioEdge(),
        llm=FakeLLM(["Hello there, this is a long enough answer to interrupt."]),
        tts=FakeTTS(seconds_per_char=0.04),
        stt=FakeSTT(["what time is it"]),
        vad=FakeVAD(),
    )


@pytest.fixture
async def served(twilio_api: respx.MockRouter) -> AsyncIterator[PhoneServer]:
    before = asyncio.all_tasks()
    async with phone_server(talker) as server:
        yield server
        await until(lambda: server.launcher.stats().running == 0, what="sessions to end")
    assert list(default_lines) == []
    stats = server.launcher.stats()
    assert (stats.running, stats.starting) == (0, 0)

    def left() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]

    try:
        await until(lambda: not left(), timeout=5, what="no task left after the calls")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {[t.get_coro() for t in left()]}") from None


def hang_ups(mock: respx.MockRouter) -> list[str]:
    return [m.group(1) for c in mock.calls if (m := HANG_UP.fullmatch(str(c.request.url)))]


# --- signatures ------------------------------------------------------------------------------


async def test_the_webhook_answers_twiml_only_to_twilio(served: PhoneServer) -> None:
    form = {
        "CallSid": "CA" + "a" * 32,
        "From": "+15551234567",
        "To": NUMBER,
        "Direction": "inbound",
    }
    async with httpx.AsyncClient() as http:
        unsigned = await post_webhook(http, served.voice_url, None, form)
        forged = await post_webhook(http, served.voice_url, "not-the-token", form)
        signed = await post_webhook(http, served.voice_url, TOKEN, form)
    assert unsigned.status_code == 403
    assert forged.status_code == 403
    assert "X-Twilio-Signature" in forged.json()["detail"]
    assert signed.status_code == 200
    assert signed.headers["content-type"].startswith("application/xml")
    twiml = signed.text
    media = served.media_url
    assert f'<Connect><Stream url="{media}">' in twiml
    assert f'<Parameter name="parley_call_id" value="twilio-ca{"a" * 32}"/>' in twiml
    assert '<Parameter name="from" value="+15551234567"/>' in twiml


async def test_a_media_stream_without_a_valid_signature_is_refused(served: PhoneServer) -> None:
    for token in (None, "not-the-token"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await FakePhoneCall(served.media_url, token, "nobody").connect()
        assert refused.value.response.status_code == 403
    assert served.launcher.stats().running == 0


def staff_only(authorization: str | None = Header(default=None)) -> bool:
    """A server whose permission callbacks refuse anyone without the staff token."""
    return authorization == "Bearer staff"


async def test_the_server_guard_leaves_twilio_to_its_signature_check(
    twilio_api: respx.MockRouter,
) -> None:
    """The routes are mounted like any plugin's (`include_router`, under the server's
    plugin-route guard) and marked `checks_itself`: callbacks that refuse every request
    without a user token neither block Twilio nor replace its signature check."""
    locked = ServeOptions(
        can_start_session=staff_only,
        can_close_session=staff_only,
        can_view_session=staff_only,
        can_list_sessions=staff_only,
    )
    async with phone_server(talker, options=locked) as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            assert (await http.get("/calls/guarded/sessions")).status_code == 403  # locked
            form = {"CallSid": "CA" + "c" * 32, "From": "+15551234567", "To": NUMBER}
            signed = await post_webhook(http, server.voice_url, TOKEN, form)
            assert signed.status_code == 200, signed.text
            assert (await post_webhook(http, server.voice_url, None, form)).status_code == 403
            # Dialing out is a user's request: the callbacks decide it.
            dial = {"to": "+15557654321", "call_id": "out-guarded"}
            assert (await http.post("/twilio/calls", json=dial)).status_code == 403
        for token in (None, "not-the-token"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await FakePhoneCall(server.media_url, token, "guarded").connect()
            assert refused.value.response.status_code == 403
        call = FakePhoneCall(server.media_url, TOKEN, "guarded")
        await call.connect()  # signed by Twilio, no user token: admitted
        await until(lambda: "guarded" in server.sessions, what="the session to start")
        await call.hang_up()
        await until(lambda: server.launcher.stats().running == 0, what="the call to end")


# --- one call, both ways ---------------------------------------------------------------------


async def test_a_call_speaks_marks_clears_dtmf_and_ends_when_the_caller_hangs_up(
    served: PhoneServer, twilio_api: respx.MockRouter
) -> None:
    call = FakePhoneCall(served.media_url, TOKEN, "phone-1", parameters={"from": "+15551234567"})
    await call.connect()
    await until(lambda: "phone-1" in served.sessions, what="the session to start")
    session = served.sessions["phone-1"]
    connection = session.connection
    assert connection is not None
    assert connection.humans()[0].metadata["call_sid"] == call.call_sid
    digits: list[str] = []
    interruptions: list[Interrupted] = []
    session.events.subscribe(lambda e: digits.append(e.digit), DTMFReceived)
    session.events.subscribe(interruptions.append, Interrupted)

    await call.silence(0.2)
    await call.say(speech(0.6))
    await call.silence(0.6)
    await until(lambda: call.media_count >= 10, what="the agent's answer")
    frames = [r.message for r in call.received if r.message["event"] == "media"]
    assert {len(base64.b64decode(f["media"]["payload"])) for f in frames} == {160}
    assert all(f["streamSid"] == call.stream_sid for f in frames)
    await call.wait_for("mark", 2)
    assert call.marks_echoed  # the playback reached a mark and echoed it

    await call.say(speech(0.4))  # barge in
    await until(lambda: call.clears, what="a clear after the caller spoke over the agent")
    await until(lambda: interruptions, what="the interruption")

    await call.press("7")
    await call.press("#")
    await until(lambda: digits == ["7", "#"], what="the digits")

    await call.hang_up()
    await until(lambda: session.closed, what="the session to close")
    assert hang_ups(twilio_api) == []  # the caller hung up: nothing to hang up


async def test_the_agent_hanging_up_closes_the_stream_and_ends_the_call(
    served: PhoneServer, twilio_api: respx.MockRouter
) -> None:
    call = FakePhoneCall(served.media_url, TOKEN, "phone-2")
    await call.connect()
    await until(lambda: "phone-2" in served.sessions, what="the session to start")
    await served.sessions["phone-2"].close()
    await asyncio.wait_for(call.closed.wait(), 5)
    assert call.close_code == 1000
    assert hang_ups(twilio_api) == [call.call_sid]
    await call.close()


async def test_a_dropped_socket_ends_the_session(served: PhoneServer) -> None:
    call = FakePhoneCall(served.media_url, TOKEN, "phone-3")
    await call.connect()
    await until(lambda: "phone-3" in served.sessions, what="the session to start")
    await call.close()  # no `stop`: the network went away
    await until(lambda: served.sessions["phone-3"].closed, what="the session to close")


# --- refused starts and outbound calls -------------------------------------------------------


async def test_a_refused_start_closes_the_stream_and_hangs_up(twilio_api: respx.MockRouter) -> None:
    async with phone_server(talker, max_concurrent_sessions=1) as server:
        first = FakePhoneCall(server.media_url, TOKEN, "first")
        await first.connect()
        await until(lambda: "first" in server.sessions, what="the first session")
        second = FakePhoneCall(server.media_url, TOKEN, "second")
        await second.connect()
        await asyncio.wait_for(second.closed.wait(), 5)
        assert second.close_code == 1013  # try again later
        assert hang_ups(twilio_api) == [second.call_sid]
        await second.close()
        await first.hang_up()
        await until(lambda: server.launcher.stats().running == 0, what="the first call to end")


async def test_an_outbound_call_is_placed_through_the_rest_api(
    served: PhoneServer, twilio_api: respx.MockRouter
) -> None:
    created = twilio_api.post(f"{API_BASE}/2010-04-01/Accounts/{ACCOUNT}/Calls.json").respond(
        201, json={"sid": "CA" + "b" * 32, "status": "queued"}
    )
    async with httpx.AsyncClient(base_url=served.base) as http:
        answer = await http.post("/twilio/calls", json={"to": "+15557654321", "call_id": "out-1"})
        bad = await http.post("/twilio/calls", json={"to": "+1", "call_id": "Bad Id"})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {
        "call_id": "out-1",
        "call_sid": "CA" + "b" * 32,
        "status": "queued",
        "to": "+15557654321",
        "from": NUMBER,
    }
    assert bad.status_code == 400
    request = created.calls.last.request
    form = dict(httpx.QueryParams(request.content.decode()))
    assert (form["To"], form["From"]) == ("+15557654321", NUMBER)
    assert f'<Stream url="{served.media_url}">' in form["Twiml"]
    assert '<Parameter name="parley_call_id" value="out-1"/>' in form["Twiml"]
    assert request.headers["authorization"].startswith("Basic ")

    # Twilio connects the answered call's stream: a session runs for it.
    call = FakePhoneCall(served.media_url, TOKEN, "out-1")
    await call.connect()
    await until(lambda: "out-1" in served.sessions, what="the outbound call's session")
    await call.hang_up()
