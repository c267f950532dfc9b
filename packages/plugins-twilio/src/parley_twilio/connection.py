"""The agent's side of one phone call: the `Connection` the engine talks to.

The caller is the one participant; their audio is the line's; the agent's audio goes to the
line's paced output. DTMF digits become `DTMFReceived` events, which the session publishes
on its own ``events`` as it does every edge's `SessionEvent`. When the
caller hangs up, `ConnectionClosed` ends the session; when the agent leaves, the stream
closes and the call is hung up through Twilio's REST API (unless the caller already did).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from parley.edge import (
    AudioOutput,
    Call,
    Connection,
    ConnectionClosed,
    Participant,
    ParticipantLeft,
    User,
)
from parley.frames import AudioFrame

from parley_twilio.events import DTMFReceived
from parley_twilio.line import PhoneLine
from parley_twilio.output import PhoneAudioOutput
from parley_twilio.rest import TwilioREST
from parley_twilio.settings import TwilioNotConfigured

logger = logging.getLogger("parley.twilio")

HANG_UP_TIMEOUT = 5.0


class TwilioConnection(Connection):
    def __init__(
        self, call: Call, agent_user: User, line: PhoneLine, rest: TwilioREST | None
    ) -> None:
        super().__init__(call, agent_user)
        self.line = line
        self._rest = rest
        start = line.start
        parameters = start.custom_parameters
        caller = parameters.get("from") or "caller"
        self.caller = Participant(
            "caller",
            User(name=caller, id="caller"),
            metadata={
                "edge": "twilio",
                "call_sid": start.call_sid,
                "stream_sid": start.stream_sid,
                "from": parameters.get("from", ""),
                "to": parameters.get("to", ""),
                "direction": parameters.get("direction", ""),
            },
        )
        self.participants[agent_user.id] = Participant(agent_user.id, agent_user, is_agent=True)
        self.participants[self.caller.id] = self.caller
        self.hung_up = False  # we asked Twilio to end the call
        self._leaving = False
        self._closed = asyncio.Event()
        line.listener = self
        if line.ended:
            self.line_ended(line.end_reason)

    # --- Connection ---------------------------------------------------------------------------

    @property
    def audio_output(self) -> AudioOutput:
        return self.line.output

    @property
    def output(self) -> PhoneAudioOutput:
        return self.line.output

    async def audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        """The caller's audio: 20 ms frames of 8 kHz mono int16, as the phone network has it."""
        caller = self.caller
        line = self.line
        while batch := await line.received_frames():
            for frame in batch:
                yield caller, frame

    async def send_data(self, message: dict[str, Any], to: str | None = None) -> None:
        """A phone has no data channel: messages are dropped (logged at debug level)."""
        logger.debug(
            "call %s: no data channel on a phone call; dropped %r", self.call.call_id, message
        )

    async def leave(self) -> None:
        """Close the stream and hang up the call (idempotent)."""
        if self._leaving:
            await self._closed.wait()
            return
        self._leaving = True
        try:
            caller_gone = self.line.hung_up_by_caller
            await self.line.close(reason="the agent hung up")
            if not caller_gone:
                await self._hang_up()
        finally:
            self._finish("left")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- from the line ------------------------------------------------------------------------

    def dtmf_received(self, digit: str) -> None:
        self.events.emit(DTMFReceived(digit, self.call.call_id, self.caller.id))

    def line_ended(self, reason: str) -> None:
        logger.info("call %s ended: %s", self.call.call_id, reason)
        if self.participants.pop(self.caller.id, None) is not None:
            self.events.emit(ParticipantLeft(self.caller))
        self._finish(reason)

    # --- internals ----------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self.events.emit(ConnectionClosed(reason))

    async def _hang_up(self) -> None:
        """Closing a ``<Connect><Stream>`` socket already ends a call with no more TwiML;
        the REST hang-up makes it certain, whatever TwiML followed."""
        call_sid = self.line.start.call_sid
        if self._rest is None or not call_sid:
            return
        try:
            await asyncio.wait_for(self._rest.hang_up(call_sid), HANG_UP_TIMEOUT)
            self.hung_up = True
        except TwilioNotConfigured as exc:
            logger.warning("call %s: not hung up through the API: %s", self.call.call_id, exc)
        except Exception as exc:
            logger.warning("call %s: hanging up through the API failed: %s", self.call.call_id, exc)
