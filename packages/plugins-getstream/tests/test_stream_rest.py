"""The edge's REST side through Stream's SDK, against Stream's API under respx: keys, users,
get-or-create, refusals, the demo link and its route."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import respx
from fake_stream import API_KEY, API_SECRET, FakeStreamAPI
from fastapi import FastAPI
from parley.edge import User
from parley.providers import MissingAPIKey
from parley.testing import InMemoryEdge
from parley_getstream.calls import JoinedCalls
from parley_getstream.edge import DEMO_BASE_URL, StreamEdge
from parley_getstream.errors import StreamError
from parley_getstream.routes import create_router, serves

# The fake answers leave out the call type's settings tree, which the edge never reads.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Missing value of non-optional type settings:RuntimeWarning"
)


@pytest.fixture
def stream_api() -> Iterator[FakeStreamAPI]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeStreamAPI(router)


@pytest.fixture
def no_stream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STREAM_API_KEY", "STREAM_API_SECRET", "STREAM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def edge(**options: object) -> StreamEdge:
    return StreamEdge(api_key=API_KEY, api_secret=API_SECRET, **options)  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_stream_env")
def test_missing_keys_fail_at_construction_naming_them() -> None:
    with pytest.raises(MissingAPIKey) as both:
        StreamEdge()
    assert "STREAM_API_KEY and STREAM_API_SECRET are not set" in str(both.value)
    assert "api_key=..., api_secret=..." in str(both.value)
    with pytest.raises(MissingAPIKey) as one:
        StreamEdge(api_key="k")
    assert "STREAM_API_SECRET is not set" in str(one.value)
    assert "STREAM_API_KEY is" not in str(one.value)


@pytest.mark.usefixtures("no_stream_env")
def test_keys_come_from_the_environment_or_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_API_KEY", "env-key")
    monkeypatch.setenv("STREAM_API_SECRET", "env-secret")
    assert StreamEdge().credentials.api_key == "env-key"
    assert StreamEdge(api_key="arg-key").credentials.api_key == "arg-key"
    assert "env-secret" not in repr(StreamEdge().credentials)


async def test_create_call_creates_the_user_and_the_call(stream_api: FakeStreamAPI) -> None:
    stream = edge(created_by=User(name="Concierge", id="concierge"))
    call = await stream.create_call("default", "room-1", purpose="demo")
    assert (call.call_type, call.call_id, call.edge, call.options) == (
        "default",
        "room-1",
        stream,
        {"purpose": "demo"},
    )
    assert stream_api.users["concierge"]["name"] == "Concierge"
    assert stream_api.calls["default:room-1"]["created_by"]["id"] == "concierge"
    # Server-side auth as the SDK does it: the key in the query, a JWT signed with the secret.
    request = stream_api.requests[-1]
    assert request.url.params["api_key"] == API_KEY
    claims = jwt.decode(request.headers["authorization"], API_SECRET, algorithms=["HS256"])
    assert "user_id" not in claims  # a server token, not a user's
    # The same call again is got, not created; the user is not sent twice.
    sent = len(stream_api.requests)
    await stream.create_call("default", "room-1")
    assert len(stream_api.requests) == sent + 1
    await stream.aclose()


async def test_a_refused_key_says_what_to_check(stream_api: FakeStreamAPI) -> None:
    stream_api.refuse_with = 401
    stream = edge()
    with pytest.raises(StreamError) as refused:
        await stream.create_call("default", "room-2")
    message = str(refused.value)
    assert "HTTP 401" in message and "STREAM_API_KEY and STREAM_API_SECRET" in message
    assert refused.value.status == 401 and not refused.value.retryable
    await stream.aclose()


async def test_the_demo_link_is_streams_demo_app_with_a_fresh_token(
    stream_api: FakeStreamAPI,
) -> None:
    stream = edge(demo_user=User(name="Ada", id="ada"))
    link = await stream.demo_link("room-3")
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" + parts.path == f"{DEMO_BASE_URL}/join/room-3"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["api_key"] == API_KEY and query["skip_lobby"] == "true"
    assert query["user_name"] == "Ada"
    claims = jwt.decode(query["token"], API_SECRET, algorithms=["HS256"])
    assert claims["user_id"] == "ada" and claims["exp"] > claims["iat"]
    assert stream_api.users["ada"]["name"] == "Ada"
    await stream.aclose()


async def test_the_route_redirects_to_the_demo_link_of_a_joined_call(
    stream_api: FakeStreamAPI,
) -> None:
    from parley.edge import Call

    stream = edge()
    calls = JoinedCalls()

    class Joined:  # what the route needs of a StreamConnection
        closed = False
        call = Call("default", "room-4", stream)

    calls.add(Joined())  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(create_router(calls))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley") as http:
        found = await http.get("/getstream/join/room-4")
        assert found.status_code == 307
        assert found.headers["location"].startswith(f"{DEMO_BASE_URL}/join/room-4?api_key=")
        missing = await http.get("/getstream/join/nobody-here")
        assert missing.status_code == 404
        assert "nobody-here" in missing.json()["detail"]
    await stream.aclose()


async def test_the_demo_page_serves_only_sessions_on_a_stream_edge(
    stream_api: FakeStreamAPI,
) -> None:
    from parley.edge import Call
    from parley.launcher import AgentLauncher
    from parley_getstream import register_routes
    from parley_server.context import RouteContext
    from parley_server.options import ServeOptions

    async def never(**kwargs: object) -> None:
        raise AssertionError("not used")

    context = RouteContext(AgentLauncher(never, never), ServeOptions())  # type: ignore[arg-type]
    app = FastAPI()
    register_routes(app, context)
    [page] = context.demo_pages
    assert page.url("http://127.0.0.1:8000", "room-5") == (
        "http://127.0.0.1:8000/getstream/join/room-5"
    )

    class Session:
        def __init__(self, edge: object) -> None:
            self.connection = type("C", (), {"call": Call("default", "room-5", edge)})()  # type: ignore[arg-type]

    stream = edge()
    assert page.serves is not None
    assert page.serves(Session(stream))
    assert not page.serves(Session(InMemoryEdge()))
    assert serves(Session(stream))
    await stream.aclose()
