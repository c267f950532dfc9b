"""uvicorn's h11 protocol with a request-header deadline.

uvicorn bounds only the idle time after a response (``timeout_keep_alive``), and a client that
trickles bytes resets even that: a slow client can hold a connection (and a descriptor) for as
long as it likes. Here a connection that has not sent a complete request head within
`HEADER_TIMEOUT` seconds of opening, or of its previous response, is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("parley.server")

HEADER_TIMEOUT = 10.0
"""Seconds a client has to send a request line and headers."""


class HeaderTimeoutH11Protocol(H11Protocol):
    """Passed to uvicorn as ``http=``; see the module docstring."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_due)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_due(self) -> None:
        self._header_deadline = None
        # IDLE: the request line and headers have not all arrived (h11 leaves IDLE on them).
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            logger.info(
                "closing a connection from %s: no complete request head within %g s",
                _peer(self.client),
                self.header_timeout,
            )
            self.transport.close()


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown client"
