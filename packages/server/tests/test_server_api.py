"""The HTTP session API in-process (httpx over ASGI): every status, errors, auth, CORS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from parley.registry import SessionRegistry
from parley.store import StoreUnavailable
from parley.stores.memory import MemoryStore
from parley.testing import InMemoryEdge
from parley_server import Runner, ServeOptions
from parley_server.api import create_app
from parley_server.metrics import ServerMetrics
from parley_server_testkit import Calls, eventually, fake_launcher, serving
from pydantic import BaseModel


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) >= {"error", "detail"}, body
    assert isinstance(body["error"], str) and isinstance(body["detail"], str) and body["detail"]
    return body


async def test_start_list_get_and_close_a_session() -> None:
    runner = Runner(fake_launcher())
    async with serving(runner) as client:
        started = await client.post("/calls/demo/sessions", json={})
        assert started.status_code == 201, started.text
        body = started.json()
        session_id = body["session_id"]
        assert body["call_id"] == "demo" and body["call_type"] == "default"
        assert body["state"] == "listening" and body["started_at"].endswith("Z")
        assert body["node_id"] == runner.launcher.registry.node_id
        assert started.headers["location"] == f"/calls/demo/sessions/{session_id}"

        listed = await client.get("/calls/demo/sessions")
        assert listed.status_code == 200
        assert [s["session_id"] for s in listed.json()["sessions"]] == [session_id]
        assert (await client.get("/calls/other/sessions")).json() == {
            "call_id": "other",
            "sessions": [],
        }

        one = await client.get(f"/calls/demo/sessions/{session_id}")
        assert one.status_code == 200
        info = one.json()
        assert info["state"] == "listening" and info["node_id"] == body["node_id"]
        assert info["error"] is None and "turns" in info["metrics"]

        closing = await client.delete(f"/calls/demo/sessions/{session_id}")
        assert closing.status_code == 202
        assert closing.json() == {"session_id": session_id, "call_id": "demo", "status": "closing"}

        async def gone() -> None:
            assert (await client.get(f"/calls/demo/sessions/{session_id}")).status_code == 404

        await eventually(gone)
        assert runner.launcher.stats().running == 0
        missing = await client.delete(f"/calls/demo/sessions/{session_id}")
        assert missing.status_code == 404 and error_of(missing)["error"] == "session_not_found"


async def test_beacon_close_accepts_any_body() -> None:
    runner = Runner(fake_launcher())
    async with serving(runner) as client:
        session_id = (await client.post("/calls/demo/sessions", json={})).json()["session_id"]
        beacon = await client.post(
            f"/calls/demo/sessions/{session_id}/close",
            content=b"bye",
            headers={"content-type": "text/plain;charset=UTF-8"},
        )
        assert beacon.status_code == 202
        await eventually(lambda: _assert_equal(runner.launcher.stats().running, 0))
        again = await client.post(f"/calls/demo/sessions/{session_id}/close")
        assert again.status_code == 404


def _assert_equal(actual: Any, expected: Any) -> None:
    assert actual == expected


async def test_params_and_call_type_reach_the_agent() -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls))
    async with serving(runner) as client:
        response = await client.post(
            "/calls/demo/sessions",
            json={"call_type": "audio_room", "params": {"language": "fr", "user_id": 7}},
        )
        assert response.status_code == 201
        assert response.json()["call_type"] == "audio_room"
        assert calls.created == [{"language": "fr", "user_id": 7}]
        record = (await client.get(f"/calls/demo/sessions/{response.json()['session_id']}")).json()
        assert record["call_type"] == "audio_room"


async def test_typed_session_params_are_validated_and_documented() -> None:
    class Params(BaseModel):
        language: str = "en"
        speed: float = 1.0

    calls = Calls()
    runner = Runner(fake_launcher(calls), ServeOptions(session_params=Params))
    async with serving(runner) as client:
        ok = await client.post("/calls/a/sessions", json={"params": {"language": "de"}})
        assert ok.status_code == 201
        bad = await client.post("/calls/a/sessions", json={"params": {"speed": "fast"}})
        assert bad.status_code == 400
        assert error_of(bad)["errors"][0]["loc"][:3] == ["body", "params", "speed"]
        assert (await client.post("/calls/b/sessions", json={})).status_code == 201
    assert calls.created == [{"language": "de", "speed": 1.0}, {"language": "en", "speed": 1.0}]
    schemas = runner.fast_api.openapi()["components"]["schemas"]
    assert "Params" in schemas


async def test_limits_answer_429_and_failures_500() -> None:
    runner = Runner(fake_launcher(max_concurrent_sessions=2, max_sessions_per_call=1))
    async with serving(runner) as client:
        assert (await client.post("/calls/a/sessions", json={})).status_code == 201
        per_call = await client.post("/calls/a/sessions", json={})
        assert per_call.status_code == 429 and error_of(per_call)["error"] == "call_session_limit"
        failed = await client.post("/calls/b/sessions", json={"params": {"fail_join": True}})
        assert failed.status_code == 500 and error_of(failed)["error"] == "session_start_failed"
        records = (await client.get("/calls/b/sessions")).json()["sessions"]
        assert [r["state"] for r in records] == ["failed"]  # the failure stays visible
        assert "refused the join" in records[0]["error"]
        assert (await client.post("/calls/c/sessions", json={})).status_code == 201
        node = await client.post("/calls/d/sessions", json={})
        assert node.status_code == 429 and error_of(node)["error"] == "session_limit"


async def test_503_before_start_and_while_draining() -> None:
    runner = Runner(fake_launcher(drain_timeout=30))
    async with serving(runner, lifespan=False) as client:
        not_started = await client.post("/calls/a/sessions", json={})
        assert not_started.status_code == 503 and error_of(not_started)["error"] == "not_admitting"
        ready = await client.get("/ready")
        assert ready.status_code == 503 and "not started" in error_of(ready)["detail"]
        assert ready.json()["readiness"]["running"] is False
        assert (await client.get("/health")).status_code == 200

    runner = Runner(fake_launcher(drain_timeout=30))
    async with serving(runner) as client:
        session_id = (await client.post("/calls/a/sessions", json={})).json()["session_id"]
        assert (await client.get("/ready")).status_code == 200
        stopping = asyncio.create_task(runner.launcher.stop())  # drains for up to 30 s
        await eventually(lambda: _assert_equal(runner.launcher.draining, True))
        ready = await client.get("/ready")
        assert ready.status_code == 503 and "draining" in error_of(ready)["detail"]
        refused = await client.post("/calls/b/sessions", json={})
        assert refused.status_code == 503 and "draining" in error_of(refused)["detail"]
        assert not stopping.done()  # the running session keeps the node draining
        assert (await client.delete(f"/calls/a/sessions/{session_id}")).status_code == 202
        await stopping


class _FlakyStore(MemoryStore):
    """A memory store that can be switched off, as if the database were unreachable."""

    down = False

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if name in _STORE_CALLS and super().__getattribute__("down"):

            async def unreachable(*args: Any, **kwargs: Any) -> Any:
                raise StoreUnavailable("the test switched the store off")

            return unreachable
        return value


_STORE_CALLS = {"get", "get_many", "set", "delete", "expire", "incr", "keys", "add_member"}
_STORE_CALLS |= {"refresh_member", "remove_member", "members", "publish"}


async def test_ready_reflects_capacity_and_store_health() -> None:
    store = _FlakyStore()
    runner = Runner(fake_launcher(max_concurrent_sessions=1, registry=SessionRegistry(store)))
    async with serving(runner) as client:
        assert (await client.get("/ready")).json()["capacity"] == 1
        session_id = (await client.post("/calls/a/sessions", json={})).json()["session_id"]
        full = await client.get("/ready")
        assert full.status_code == 503 and "at capacity: 1 of 1" in error_of(full)["detail"]
        await runner.launcher.close_session(session_id)
        assert (await client.get("/ready")).status_code == 200

        store.down = True
        await runner.launcher.registry.heartbeat()
        down = await client.get("/ready")
        assert down.status_code == 503 and "unreachable" in error_of(down)["detail"]
        listed = await client.get("/calls/a/sessions")
        assert listed.status_code == 503 and error_of(listed)["error"] == "store_unavailable"
        store.down = False
        await runner.launcher.registry.heartbeat()
        assert (await client.get("/ready")).status_code == 200


async def test_sessions_on_another_node_are_found_and_closed() -> None:
    store = MemoryStore()
    node_a = Runner(fake_launcher(registry=SessionRegistry(store, node_id="node-a")))
    node_b = Runner(fake_launcher(registry=SessionRegistry(store, node_id="node-b")))
    async with serving(node_a) as a, serving(node_b) as b:
        session_id = (await b.post("/calls/shared/sessions", json={})).json()["session_id"]
        seen = await a.get(f"/calls/shared/sessions/{session_id}")
        assert seen.status_code == 200 and seen.json()["node_id"] == "node-b"
        assert [
            s["node_id"] for s in (await a.get("/calls/shared/sessions")).json()["sessions"]
        ] == ["node-b"]
        assert (await a.delete(f"/calls/shared/sessions/{session_id}")).status_code == 202
        await eventually(lambda: _assert_equal(node_b.launcher.stats().running, 0))
        assert node_a.launcher.stats().running == 0


BAD_CALL_IDS = ["UPPER", "a*b", "x" * 1000, "sp ace", "a%2Fb", "dots.here"]


@pytest.mark.parametrize("call_id", BAD_CALL_IDS)
async def test_bad_call_ids_are_400_and_start_nothing(call_id: str) -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls))
    async with serving(runner) as client:
        for method in ("POST", "GET"):
            response = await client.request(method, f"/calls/{call_id}/sessions")
            assert response.status_code in (400, 404), response.text
            body = error_of(response)
            if response.status_code == 400:
                assert body["error"] == "invalid_call_id"
                assert "a-z, 0-9" in body["detail"]
        view = await client.get(f"/calls/{call_id}/sessions/sess_1")
        assert 400 <= view.status_code < 500
    assert calls.created == []
    assert runner.launcher.stats().running == 0
    assert runner.launcher.registry.local_sessions() == []


async def test_a_slash_in_the_call_id_matches_no_route() -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls))
    async with serving(runner) as client:
        response = await client.post("/calls/a/b/sessions", json={})
        assert response.status_code == 404 and error_of(response)["error"] == "not_found"
    assert calls.created == []


@pytest.mark.parametrize(
    ("content", "headers", "status", "error"),
    [
        (b'{"call_type": ', {"content-type": "application/json"}, 400, "invalid_json"),
        (b"not json", {}, 415, "unsupported_media_type"),
        (b"call_type=x", {"content-type": "application/x-www-form-urlencoded"}, 415, None),
        (b'{"call_type": "x"}', {"content-type": "text/plain"}, 415, None),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "invalid_request"),
        (b'{"call_type": "bad type!"}', {"content-type": "application/json"}, 400, None),
        (b'{"surprise": 1}', {"content-type": "application/json"}, 400, None),
        (b'{"params": {"call_id": "x"}}', {"content-type": "application/json"}, 400, None),
        (b'{"params": {"not-an-identifier": 1}}', {"content-type": "application/json"}, 400, None),
        (b'{"params": []}', {"content-type": "application/json"}, 400, None),
    ],
)
async def test_bad_bodies_are_clear_4xx_and_start_nothing(
    content: bytes, headers: dict[str, str], status: int, error: str | None
) -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls))
    async with serving(runner) as client:
        response = await client.post("/calls/demo/sessions", content=content, headers=headers)
        assert response.status_code == status, response.text
        body = error_of(response)
        if error is not None:
            assert body["error"] == error
    assert calls.created == [] and runner.launcher.stats().running == 0


async def test_oversized_bodies_are_413() -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls))
    big = b'{"params": {"x": "' + b"a" * 70_000 + b'"}}'
    async with serving(runner) as client:
        declared = await client.post(
            "/calls/demo/sessions", content=big, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413 and error_of(declared)["error"] == "body_too_large"

        async def chunks() -> Any:  # no Content-Length: the limit counts what streams in
            for start in range(0, len(big), 8192):
                yield big[start : start + 8192]

        streamed = await client.post(
            "/calls/demo/sessions", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413 and error_of(streamed)["error"] == "body_too_large"
        small = await client.post("/calls/demo/sessions", json={"params": {"x": "a" * 1000}})
        assert small.status_code == 201
    assert len(calls.created) == 1


async def test_unknown_routes_and_methods_are_json() -> None:
    async with serving(Runner(fake_launcher())) as client:
        missing = await client.get("/nope")
        assert missing.status_code == 404 and "/nope" in error_of(missing)["detail"]
        wrong = await client.put("/calls/demo/sessions")
        assert wrong.status_code == 405 and error_of(wrong)["error"] == "method_not_allowed"
        assert "GET" in wrong.headers["allow"]


def _bearer(call_id: str, authorization: str | None = Header(default=None)) -> str:
    if authorization is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    if authorization != "Bearer alice" or call_id == "forbidden":
        raise HTTPException(403, f"not allowed on {call_id}")
    return "alice"


async def test_permission_callbacks_use_headers_and_the_call_id() -> None:
    seen: list[tuple[str, str]] = []

    def can_start(call_id: str, user: str = Depends(_bearer)) -> None:
        seen.append((user, call_id))

    calls = Calls()
    options = ServeOptions(
        can_start_session=can_start,
        can_view_session=_bearer,
        can_close_session=_bearer,
        can_list_sessions=_bearer,
    )
    runner = Runner(fake_launcher(calls), options)
    alice = {"Authorization": "Bearer alice"}
    async with serving(runner) as client:
        anonymous = await client.post("/calls/demo/sessions", json={})
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert error_of(anonymous) == {"error": "unauthorized", "detail": "log in first"}
        mallory = await client.post(
            "/calls/demo/sessions", headers={"Authorization": "Bearer x"}, json={}
        )
        assert mallory.status_code == 403 and error_of(mallory)["error"] == "forbidden"
        forbidden = await client.post("/calls/forbidden/sessions", headers=alice, json={})
        assert forbidden.status_code == 403 and "forbidden" in error_of(forbidden)["detail"]
        invalid = await client.post("/calls/BAD/sessions", headers=alice, json={})
        assert invalid.status_code == 400  # checked before any callback runs
        # The callback runs before the body is looked at: no auth, bad body -> 401.
        assert (await client.post("/calls/demo/sessions", json={"surprise": 1})).status_code == 401

        started = await client.post("/calls/demo/sessions", headers=alice, json={})
        assert started.status_code == 201
        session = f"/calls/demo/sessions/{started.json()['session_id']}"
        for method, url in (("GET", session), ("GET", "/calls/demo/sessions"), ("DELETE", session)):
            assert (await client.request(method, url)).status_code == 401
            assert (
                await client.request(method, url, headers={"Authorization": "Bearer x"})
            ).status_code == 403
        assert (await client.get(session, headers=alice)).status_code == 200
        assert (await client.get("/calls/demo/sessions", headers=alice)).status_code == 200
        assert (await client.delete(session, headers=alice)).status_code == 202
    assert seen == [("alice", "demo")]
    assert len(calls.created) == 1


async def test_custom_routes_on_runner_fast_api() -> None:
    runner = Runner(fake_launcher())

    @runner.fast_api.get("/calls/{call_id}/summary")
    async def summary(call_id: str) -> dict[str, Any]:
        return {"call_id": call_id, "sessions": len(await runner.launcher.list_sessions(call_id))}

    async with serving(runner) as client:
        await client.post("/calls/demo/sessions", json={})
        assert (await client.get("/calls/demo/summary")).json() == {
            "call_id": "demo",
            "sessions": 1,
        }
        assert "/calls/{call_id}/summary" in (await client.get("/openapi.json")).json()["paths"]


async def test_a_custom_app_is_used_as_is() -> None:
    app = FastAPI()
    holder: dict[str, Runner] = {}

    @app.post("/start/{call_id}")
    async def start(call_id: str) -> dict[str, str]:
        session = await holder["runner"].launcher.start_session(call_id)
        return {"session_id": session.id}

    runner = Runner(
        fake_launcher(),
        ServeOptions(fast_api=app, cors_allow_origins=["https://app.example.com"]),
    )
    holder["runner"] = runner
    assert runner.fast_api is app
    async with serving(runner) as client:
        assert runner.launcher.running  # the launcher follows the app's lifespan
        assert (await client.post("/start/demo")).status_code == 200
        for path in ("/health", "/ready", "/metrics", "/calls/demo/sessions"):
            assert (await client.get(path)).status_code == 404
        preflight = await client.options(
            "/start/demo",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers  # no CORS added
    assert not runner.launcher.running


async def test_cors_is_off_by_default() -> None:
    async with serving(Runner(fake_launcher())) as client:
        response = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        preflight = await client.options(
            "/calls/demo/sessions",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_cors_allows_listed_origins_only() -> None:
    options = ServeOptions(cors_allow_origins=["https://app.example.com"])
    async with serving(Runner(fake_launcher(), options)) as client:
        preflight = await client.options(
            "/calls/demo/sessions",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "access-control-allow-credentials" not in preflight.headers
        simple = await client.get("/health", headers={"Origin": "https://app.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
        other = await client.options(
            "/calls/demo/sessions",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 400 and error_of(other)["error"] == "cors_refused"
        stranger = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
        # Errors carry CORS headers too, so a browser app can read them.
        too_big = await client.post(
            "/calls/demo/sessions",
            content=b"x" * 70_000,
            headers={"Origin": "https://app.example.com", "content-type": "application/json"},
        )
        assert too_big.status_code == 413
        assert too_big.headers["access-control-allow-origin"] == "https://app.example.com"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cors_allow_origins": ["*"], "cors_allow_credentials": True}, "cannot be combined"),
        ({"cors_allow_origins": ["*", "https://a.example"]}, "alone"),
        ({"cors_allow_origins": ["https://a.example/"]}, "not an origin"),
        ({"cors_allow_origins": ["a.example"]}, "not an origin"),
        ({"cors_allow_origins": "https://a.example"}, "list of origins"),
        ({"max_body_bytes": 10}, "at least 1024"),
    ],
)
def test_unsafe_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ServeOptions(**kwargs)


def test_wildcard_without_credentials_is_allowed() -> None:
    assert ServeOptions(cors_allow_origins=["*"]).cors_allow_origins == ("*",)


async def test_openapi_documents_400_not_422_and_the_id_rules() -> None:
    runner = Runner(fake_launcher())
    async with serving(runner, lifespan=False) as client:
        schema = (await client.get("/openapi.json")).json()
    post = schema["paths"]["/calls/{call_id}/sessions"]["post"]
    assert set(post["responses"]) == {"201", "400", "401", "403", "413", "415", "429", "500", "503"}
    assert all(
        "422" not in op["responses"] for path in schema["paths"].values() for op in path.values()
    )
    call_id = next(p for p in post["parameters"] if p["name"] == "call_id")
    assert call_id["schema"]["pattern"] == "^[a-z0-9_-]+$" and call_id["schema"]["maxLength"] == 128
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["paths"]) >= {
        "/calls/{call_id}/sessions",
        "/calls/{call_id}/sessions/{session_id}",
        "/calls/{call_id}/sessions/{session_id}/close",
        "/health",
        "/ready",
        "/metrics",
    }


async def test_metrics_count_sessions_turns_latency_and_loop_lag() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    runner = Runner(fake_launcher(edge=edge))
    runner.metrics.lag_interval = 0.01
    async with serving(runner) as client:
        started = await client.post("/calls/talk/sessions", json={})
        assert started.status_code == 201
        connection = await edge.wait_for_connection("talk")
        await connection.push_speech(0.6)
        await connection.push_silence(1.2)

        async def scraped() -> str:
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            return response.text

        async def turn_counted() -> None:
            text = await scraped()
            assert 'parley_turns_total{interrupted="false"} 1.0' in text
            assert 'parley_turn_stage_seconds_count{stage="end_to_end"} 1.0' in text
            assert "parley_event_loop_lag_seconds_count" in text
            assert "parley_event_loop_lag_seconds_count 0.0" not in text

        await eventually(turn_counted)
        text = await scraped()
        assert 'parley_sessions{state="' in text and "parley_sessions_started_total 1.0" in text
        assert "parley_ready 1.0" in text
        await client.delete(f"/calls/talk/sessions/{started.json()['session_id']}")

        async def ended() -> None:
            assert 'parley_sessions_ended_total{outcome="closed"} 1.0' in await scraped()

        await eventually(ended)


async def test_each_runner_has_its_own_metrics_registry() -> None:
    first, second = Runner(fake_launcher()), Runner(fake_launcher())
    assert first.metrics.registry is not second.metrics.registry
    first.metrics.sessions_started.inc()
    assert b"parley_sessions_started_total 1.0" in first.metrics.render()
    assert b"parley_sessions_started_total 0.0" in second.metrics.render()


async def test_the_app_is_built_from_a_launcher_and_options_without_a_runner() -> None:
    launcher = fake_launcher()
    started: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await launcher.start()
        started.append("up")
        yield
        await launcher.stop()

    app = create_app(
        launcher, ServeOptions(metrics=False), lifespan=lifespan, metrics=ServerMetrics(launcher)
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client,
    ):
        assert started == ["up"]
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/metrics")).status_code == 404  # options.metrics is off
        session = await client.post("/calls/bare/sessions", json={})
        assert session.status_code == 201, session.text
        assert (
            await client.delete(f"/calls/bare/sessions/{session.json()['session_id']}")
        ).status_code == 202
