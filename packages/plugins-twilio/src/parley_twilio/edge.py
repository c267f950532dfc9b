"""`TwilioEdge`: phone calls through Twilio Media Streams.

A call reaches this process as a WebSocket that Twilio opens to the media route
(`parley_twilio.routes`); the route starts a session through the launcher, and the agent's
`join` claims that call's line here. The edge needs no network of its own except the REST
API, to hang up.
"""

from __future__ import annotations

from parley.edge import Call, Edge, EdgeCapabilities, User

from parley_twilio.connection import TwilioConnection
from parley_twilio.g711 import SAMPLE_RATE
from parley_twilio.line import Lines, default_lines
from parley_twilio.rest import TwilioREST
from parley_twilio.settings import TwilioSettings


class NoPhoneLine(RuntimeError):
    """No Media Stream for the call reached this process in time."""


class TwilioEdge(Edge):
    """Options: ``account_sid`` / ``auth_token`` (default ``TWILIO_ACCOUNT_SID`` /
    ``TWILIO_AUTH_TOKEN``) to hang calls up; ``connect_timeout``: how long `join` waits for
    the call's stream; ``max_buffered``: seconds of agent audio queued ahead of the pacer;
    ``mark_every``: frames between playback marks (5 = every 100 ms)."""

    capabilities = EdgeCapabilities(
        audio_in=True, audio_out=True, video_in=False, data=False, output_sample_rate=SAMPLE_RATE
    )

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        lines: Lines | None = None,
        connect_timeout: float = 10.0,
        settings: TwilioSettings | None = None,
        rest: TwilioREST | None = None,
    ) -> None:
        self.settings = settings or TwilioSettings.from_env(
            account_sid=account_sid, auth_token=auth_token
        )
        self.lines = lines if lines is not None else default_lines
        self.connect_timeout = connect_timeout
        self.rest = rest or TwilioREST(self.settings)
        self._connections: list[TwilioConnection] = []

    async def join(self, call: Call, agent_user: User) -> TwilioConnection:
        line = await self.lines.wait_for(call.call_id, self.connect_timeout)
        if line is None or line.ended:
            raise NoPhoneLine(
                f"no phone call {call.call_id!r} in this process: its media stream "
                + (
                    "ended"
                    if line is not None
                    else f"did not start within {self.connect_timeout:g} s"
                )
                + ". Phone sessions are started by the /twilio/media route when Twilio connects."
            )
        if line.listener is not None:
            raise NoPhoneLine(f"phone call {call.call_id!r} already has an agent")
        connection = TwilioConnection(call, agent_user, line, self.rest)
        self._connections = [c for c in self._connections if not c.line.ended]
        self._connections.append(connection)
        return connection

    async def aclose(self) -> None:
        for connection in self._connections:
            await connection.leave()
        self._connections.clear()
