"""`StreamEdge`: the agent joins calls on Stream's video network through Stream's Python SDK.

Everything on the wire is the SDK's: users and tokens and the call itself over its REST client
(`getstream.AsyncStream`), the media over `getstream.video.rtc.join`. The edge only maps what
the SDK reports onto Parley's `Connection` (`parley_getstream.connection`).
"""

from __future__ import annotations

import asyncio
import logging
import webbrowser
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlencode

from parley.edge import Call, Edge, EdgeCapabilities, User

from parley_getstream.calls import JoinedCalls, joined_calls
from parley_getstream.connection import StreamConnection
from parley_getstream.credentials import StreamCredentials, find_credentials
from parley_getstream.errors import api_error
from parley_getstream.sdk import (
    SAMPLE_RATE,
    JoinCall,
    sdk_api_error,
    sdk_client,
    sdk_join,
    sdk_models,
    subscription,
)

logger = logging.getLogger("parley.getstream")

# Stream's hosted demo app: it joins call ``{call_id}`` of type "default" as the token's user.
DEMO_BASE_URL = "https://getstream.io/video/demos"
DEMO_USER = User(name="Human User", id="user-demo-agent")
DEMO_TOKEN_SECONDS = 3600


class StreamEdge(Edge):
    """Calls on Stream's video network (getstream.io).

    ``api_key``/``api_secret`` default to ``STREAM_API_KEY``/``STREAM_API_SECRET`` (a
    `MissingAPIKey` naming them is raised here when neither is given); ``base_url`` to
    ``STREAM_BASE_URL`` or the SDK's host. ``video=True`` subscribes to the participants'
    cameras (for a video-capable model or processors); otherwise only audio comes in.
    ``created_by`` is the Stream user that creates calls in `create_call` (the server-side API
    needs one; default: Parley's default agent user). ``demo_user`` is who joins through the
    demo link, at ``demo_base_url``. ``max_buffered`` is how far (seconds) the agent's audio
    may run ahead of real time; ``input_queue_frames`` how many incoming audio frames wait
    for the engine before the oldest are dropped. ``join`` replaces
    `getstream.video.rtc.join` (tests give a fake); ``calls`` is where joined calls are found
    by the demo link route.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str | None = None,
        video: bool = False,
        created_by: User | None = None,
        demo_user: User = DEMO_USER,
        demo_base_url: str = DEMO_BASE_URL,
        max_buffered: float = 1.0,
        input_queue_frames: int = 100,
        join: JoinCall | None = None,
        calls: JoinedCalls | None = None,
    ) -> None:
        self.credentials: StreamCredentials = find_credentials(api_key, api_secret, base_url)
        self.video = video
        self.capabilities = EdgeCapabilities(
            audio_in=True,
            audio_out=True,
            video_in=video,
            data=True,
            output_sample_rate=SAMPLE_RATE,
        )
        self.created_by = created_by or User()
        self.demo_user = demo_user
        self.demo_base_url = demo_base_url.rstrip("/")
        self.max_buffered = max_buffered
        self.input_queue_frames = input_queue_frames
        self._join = join or sdk_join
        self.calls = calls if calls is not None else joined_calls
        self._stream: Any = None  # the SDK's AsyncStream, made on first use
        self._busy = 0  # REST requests in flight on it
        self._users: set[str] = set()  # users this edge has created or updated
        self._connections: list[StreamConnection] = []

    # --- Edge ---------------------------------------------------------------------------------

    async def create_call(self, call_type: str, call_id: str, **options: Any) -> Call:
        """Get or create the call on Stream. ``created_by=User(...)`` overrides the edge's
        creator for this call; the other options are kept on the `Call`."""
        creator = options.pop("created_by", None) or self.created_by
        async with self._rest() as stream:
            await self._upsert(stream, creator)
            request = sdk_models().CallRequest(created_by_id=creator.id)
            sdk_call = stream.video.call(call_type, call_id)
            await self._api(
                sdk_call.get_or_create(data=request),
                f"get or create call {call_type}:{call_id}",
            )
        return Call(call_type, call_id, self, dict(options))

    async def join(self, call: Call, agent_user: User) -> StreamConnection:
        async with self._rest() as stream:
            await self._upsert(stream, agent_user)
            sdk_call = stream.video.call(call.call_type, call.call_id)
            rtc = await self._join(
                sdk_call, agent_user.id, create=True, subscription_config=subscription(self.video)
            )
            connection = StreamConnection(
                call,
                agent_user,
                rtc,
                sdk_call,
                max_buffered=self.max_buffered,
                input_queue_frames=self.input_queue_frames,
                on_close=self._forget,
            )
            self._connections.append(connection)
            self.calls.add(connection)
            await connection.start()  # on failure it closes, and `_forget` drops it
        logger.info("agent %s joined Stream call %s", agent_user.id, call.cid)
        return connection

    async def aclose(self) -> None:
        for connection in list(self._connections):
            await connection.leave()
        await self._close_client()

    # --- the demo link ------------------------------------------------------------------------

    async def demo_link(self, call: Call | str) -> str:
        """A link that opens Stream's demo app in a browser, on ``call``, as ``demo_user``
        (created or updated here, with a token valid for an hour)."""
        call_id = call if isinstance(call, str) else call.call_id
        async with self._rest() as stream:
            await self._upsert(stream, self.demo_user)
            token = stream.create_token(self.demo_user.id, expiration=DEMO_TOKEN_SECONDS)
        params = {
            "api_key": self.credentials.api_key,
            "token": token,
            "skip_lobby": "true",
            "user_name": self.demo_user.name,
        }
        return f"{self.demo_base_url}/join/{call_id}?{urlencode(params)}"

    async def open_demo(self, call: Call | str) -> str:
        """Open the demo link in the default browser (as Vision Agents' ``open_demo``)."""
        link = await self.demo_link(call)
        await asyncio.to_thread(webbrowser.open, link)
        return link

    # --- internals ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _rest(self) -> AsyncIterator[Any]:
        """The SDK client, kept open while a request or a joined call uses it."""
        if self._stream is None:
            self._stream = sdk_client(self.credentials, f"parley-getstream-{_version()}")
        self._busy += 1
        try:
            yield self._stream
        finally:
            self._busy -= 1

    async def _upsert(self, stream: Any, user: User) -> None:
        if user.id in self._users:
            return
        request = sdk_models().UserRequest(id=user.id, name=user.name, image=user.image)
        await self._api(stream.upsert_users(request), f"create or update user {user.id!r}")
        self._users.add(user.id)

    @staticmethod
    async def _api(request: Any, doing: str) -> Any:
        try:
            return await request
        except sdk_api_error() as error:
            raise api_error(error, doing) from error

    def _forget(self, connection: StreamConnection) -> None:
        self.calls.remove(connection)
        if connection in self._connections:
            self._connections.remove(connection)
        if not self._connections and not self._busy:
            # Each agent of a launcher has its own edge: release its HTTP pool with its call.
            task = asyncio.ensure_future(self._close_client(only_if_unused=True))
            task.add_done_callback(_log_failure)

    async def _close_client(self, *, only_if_unused: bool = False) -> None:
        if only_if_unused and (self._busy or self._connections):
            return  # used again since
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()


def _version() -> str:
    try:
        return version("parley-getstream")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing the Stream client failed: %r", task.exception())
