"""`CancelledAtShutdownMiddleware`: a forced shutdown ends requests and the lifespan quietly.

When the server stops before a request finishes (uvicorn's graceful-shutdown bound passed, or
a second signal forced the exit) uvicorn cancels the request's task and the event loop's
teardown cancels the lifespan. Both used to log a full traceback at ERROR and answer 500, for
what is an orderly, logged shutdown. Here a request cancelled before its response started
answers 503 ``shutting_down``, and a lifespan cancelled while it waits for the shutdown
message runs its shutdown (the launcher stops: sessions closed, slots released) as if told to.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley_server.errors import error_response

logger = logging.getLogger("parley.server")


class CancelledAtShutdownMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, _shutdown_when_cancelled(receive), send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if started:
                raise
            # The task ends here either way; its cancellation was the server's way to end it.
            logger.info(
                "%s %s cut off: the server is shutting down", scope["method"], scope["path"]
            )
            response = error_response(
                503,
                "shutting_down",
                "the server is shutting down; retry on another node or later",
                {"Connection": "close"},
            )
            await response(scope, receive, send)


def _shutdown_when_cancelled(receive: Receive) -> Receive:
    async def lifespan_receive() -> Message:
        try:
            return await receive()
        except asyncio.CancelledError:
            return {"type": "lifespan.shutdown"}

    return lifespan_receive
