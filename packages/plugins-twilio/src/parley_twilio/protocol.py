"""Twilio Media Streams messages: what Twilio sends on the stream's WebSocket, and what we
send back on a bidirectional stream.

From Twilio: ``connected``, ``start`` (account, call and stream sids, tracks, custom
parameters, media format), ``media`` (base64 µ-law at 8 kHz, 20 ms per message), ``dtmf``,
``mark`` (a mark we sent, echoed once the audio before it has played) and ``stop``.
To Twilio: ``media``, ``mark`` and ``clear`` (drop the audio Twilio has buffered).
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

CALL_ID_PARAMETER = "parley_call_id"


class ProtocolError(ValueError):
    """A message that is not Media Streams JSON."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The ``start`` message: which call and stream this socket carries."""

    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1

    @classmethod
    def parse(cls, message: dict[str, Any]) -> StreamStart:
        start = message.get("start")
        if not isinstance(start, dict):
            raise ProtocolError("a 'start' message without its 'start' object")
        media_format = start.get("mediaFormat") or {}
        stream_sid = str(start.get("streamSid") or message.get("streamSid") or "")
        if not stream_sid:
            raise ProtocolError("a 'start' message without a streamSid")
        parameters = start.get("customParameters") or {}
        return cls(
            stream_sid=stream_sid,
            call_sid=str(start.get("callSid") or ""),
            account_sid=str(start.get("accountSid") or ""),
            tracks=tuple(str(t) for t in start.get("tracks") or ("inbound",)),
            custom_parameters={str(k): str(v) for k, v in parameters.items()},
            encoding=str(media_format.get("encoding") or "audio/x-mulaw"),
            sample_rate=int(media_format.get("sampleRate") or 8000),
            channels=int(media_format.get("channels") or 1),
        )


def parse(text: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise ProtocolError("a message without an 'event'")
    return message


def media_payload(message: dict[str, Any]) -> bytes:
    media = message.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise ProtocolError("a 'media' message without a payload")
    try:
        return binascii.a2b_base64(media["payload"], strict_mode=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("a 'media' payload that is not base64") from None


_MEDIA_HEAD = '{"event":"media",'
_INBOUND_TRACK = '"track":"inbound"'
_PAYLOAD_KEY = '"payload":"'


def inbound_audio(text: str) -> bytes | None:
    """The caller's audio in a ``media`` message laid out as Twilio sends it, found without
    parsing the JSON (fifty such messages a second a call); None for any other message or
    layout, which `parse` and `media_payload` then read in full."""
    if not text.startswith(_MEDIA_HEAD):
        return None
    start = text.find(_PAYLOAD_KEY)
    if start < 0 or text.find(_INBOUND_TRACK, 0, start) < 0:
        return None
    start += len(_PAYLOAD_KEY)
    end = text.find('"', start)
    if end < 0:
        return None
    try:  # an escape in the string (``\/``) fails here and goes the long way
        return binascii.a2b_base64(text[start:end], strict_mode=True)
    except (binascii.Error, ValueError):
        return None


# --- messages we send ------------------------------------------------------------------------


class OutboundMessages:
    """The messages of one stream, from templates made once: a call sends fifty ``media``
    messages a second, so each costs a base64 encoding and one string join, no JSON."""

    __slots__ = ("_mark_head", "_media_head", "clear")

    def __init__(self, stream_sid: str) -> None:
        sid = json.dumps(stream_sid)  # quoted and escaped, once
        self._media_head = f'{{"event":"media","streamSid":{sid},"media":{{"payload":"'
        self._mark_head = f'{{"event":"mark","streamSid":{sid},"mark":{{"name":'
        self.clear = f'{{"event":"clear","streamSid":{sid}}}'

    def media(self, payload: bytes) -> str:
        encoded = binascii.b2a_base64(payload, newline=False).decode("ascii")
        return f'{self._media_head}{encoded}"}}}}'

    def mark(self, name: str) -> str:
        return f"{self._mark_head}{json.dumps(name)}}}}}"


def media_message(stream_sid: str, payload: bytes) -> str:
    return OutboundMessages(stream_sid).media(payload)


def mark_message(stream_sid: str, name: str) -> str:
    return OutboundMessages(stream_sid).mark(name)


def clear_message(stream_sid: str) -> str:
    return OutboundMessages(stream_sid).clear


# --- TwiML -----------------------------------------------------------------------------------


def connect_stream_twiml(stream_url: str, parameters: dict[str, str]) -> str:
    """``<Connect><Stream>``: a bidirectional stream to ``stream_url`` for the whole call.

    Twilio drops a query string from a stream URL, so what the socket needs to know travels
    as ``<Parameter>`` elements (they come back in the ``start`` message).
    """
    lines = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
        for name, value in parameters.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{lines}</Stream></Connect>"
        "</Response>"
    )


def reject_twiml(message: str) -> str:
    """Say why, then hang up (a caller hears this when no agent can take the call)."""
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Say>{escape(message)}</Say><Hangup/></Response>"
    )
