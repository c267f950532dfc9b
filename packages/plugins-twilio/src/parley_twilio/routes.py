"""The Twilio routes, as a FastAPI router any app can include (the server mounts it).

Under ``/twilio`` (change with ``prefix``):

- ``POST /twilio/voice``  the Voice webhook of your number. Answers TwiML that connects the
  call to a bidirectional Media Stream (``<Connect><Stream url="wss://…/twilio/media">``),
  with the Parley call id (``twilio-<CallSid>``, or ``?call_id=`` on the webhook URL) as a
  custom parameter. When the launcher admits no session, the caller hears why and the call
  hangs up.
- ``WS   /twilio/media``  the Media Stream. Its ``start`` message names the call; a session
  is started for it through the launcher (`AgentLauncher.start_session`), so every launcher
  limit, the registry and the session API apply to phone calls. A refused start closes the
  stream and hangs the call up.
- ``POST /twilio/calls``  ``{"to": "+1…", "from"?: "+1…", "call_id"?: "…"}``: dial a number
  through Twilio's REST API; when answered, the call streams here like an incoming one.
  Needs the server's right to start a session on the call (``can_start_session``).

Twilio's requests (the webhook and the stream's handshake) carry no user credentials: they
prove they come from Twilio with ``X-Twilio-Signature`` (`parley_twilio.signature`), checked
against the auth token; an unsigned or wrongly signed request gets 403. The plugin hook
therefore mounts the router marked ``checks_itself`` for the server's plugin-route guard
(``/twilio/calls`` asks the permission callbacks itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response, WebSocket
from fastapi.websockets import WebSocketDisconnect
from parley.launcher import (
    InvalidCallId,
    LauncherNotRunning,
    SessionLimitExceeded,
    validate_call_id,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_twilio.line import Lines, PhoneLine, default_lines
from parley_twilio.protocol import (
    CALL_ID_PARAMETER,
    ProtocolError,
    StreamStart,
    connect_stream_twiml,
    inbound_audio,
    parse,
    reject_twiml,
)
from parley_twilio.rest import TwilioError, TwilioREST
from parley_twilio.settings import TwilioNotConfigured, TwilioSettings
from parley_twilio.signature import SIGNATURE_HEADER, public_url, valid_signature

logger = logging.getLogger("parley.twilio")

MAX_BODY_BYTES = 16 * 1024  # a Voice webhook is ~1 KB of form fields
BUSY_MESSAGE = "Sorry, no agent can take your call right now. Please call again later."
# WebSocket close codes for a refused start: try again later (limits), or a server error.
CLOSE_TRY_LATER = 1013
CLOSE_FAILED = 1011
CLOSE_POLICY = 1008


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    to: str = Field(min_length=2, max_length=64)
    from_: str | None = Field(default=None, alias="from", min_length=2, max_length=64)
    call_id: str | None = None


def create_router(
    launcher: Any = None,
    *,
    settings: TwilioSettings | None = None,
    lines: Lines | None = None,
    permissions: Any = None,
    prefix: str = "/twilio",
    call_type: str = "phone",
    validate_signatures: bool = True,
    start_message_timeout: float = 10.0,
    rest: TwilioREST | None = None,
) -> APIRouter:
    """Build the router.

    ``launcher``: the `AgentLauncher` that starts a session per call (None: streams wait for
    an agent to `join` them some other way). ``settings``: the account, auth token and
    public URL (None: `TwilioSettings.from_env` at each request, so they may be set after the
    app is built). ``permissions``: the server's `RouteContext.permissions` (who may place
    outbound calls; None allows everyone). ``validate_signatures=False`` only for local
    experiments without Twilio: then anyone who can reach the port can start sessions.
    """
    calls = lines if lines is not None else default_lines
    # The routes check their callers themselves (Twilio's signature; the callbacks, for
    # dialing out): each lists `checks_itself`, so the server's plugin-route guard lets
    # them be. On each route, not on `include_router`: with FastAPI's included routers the
    # guard sees only a route's own dependencies.
    marker = [Depends(permissions.checks_itself)] if permissions is not None else []
    router = APIRouter(prefix=prefix, tags=["twilio"])

    def current() -> TwilioSettings:
        return settings if settings is not None else TwilioSettings.from_env()

    def client(now: TwilioSettings) -> TwilioREST:
        return rest if rest is not None else TwilioREST(now)

    def signed(now: TwilioSettings, seen_url: str, headers: Any, params: Any = ()) -> bool:
        if not validate_signatures:
            return True
        token = now.require_token()
        url = public_url(seen_url, now.public_url, headers)
        return valid_signature(token, headers.get(SIGNATURE_HEADER), url, params)

    def stream_url(now: TwilioSettings, seen_url: str, headers: Any) -> str:
        parts = urlsplit(public_url(seen_url, now.public_url, headers))
        scheme = "ws" if parts.scheme == "http" else "wss"
        path = parts.path.rsplit("/", 1)[0] + "/media"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    def admitting() -> bool:
        return launcher is None or bool(getattr(launcher, "ready", True))

    @router.post(
        "/voice", summary="Twilio Voice webhook: answer with a Media Stream", dependencies=marker
    )
    async def voice(request: Request) -> Response:
        body = await _read_body(request)
        params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        now = current()
        try:
            if not signed(now, str(request.url), request.headers, params):
                raise HTTPException(
                    403,
                    f"invalid {SIGNATURE_HEADER}: this request is not signed by Twilio with "
                    "this account's auth token (check TWILIO_AUTH_TOKEN, and TWILIO_PUBLIC_URL "
                    "when a proxy or tunnel stands in front of this server)",
                )
        except TwilioNotConfigured as exc:
            raise HTTPException(503, str(exc)) from exc
        form = dict(params)
        call_sid = form.get("CallSid", "")
        if not call_sid:
            raise HTTPException(400, "a Voice webhook without a CallSid")
        call_id = request.query_params.get("call_id") or f"twilio-{call_sid.lower()}"
        try:
            validate_call_id(call_id)
        except InvalidCallId as exc:
            raise HTTPException(400, str(exc)) from exc
        if not admitting():
            logger.warning("call %s refused: the launcher admits no session now", call_id)
            return _twiml(reject_twiml(BUSY_MESSAGE))
        parameters = {
            CALL_ID_PARAMETER: call_id,
            "from": form.get("From", ""),
            "to": form.get("To", ""),
            "direction": form.get("Direction", ""),
        }
        return _twiml(
            connect_stream_twiml(stream_url(now, str(request.url), request.headers), parameters)
        )

    @router.websocket("/media", dependencies=marker)
    async def media(websocket: WebSocket) -> None:
        now = current()
        try:
            allowed = signed(now, str(websocket.url), websocket.headers)
        except TwilioNotConfigured as exc:
            logger.error("refused a media stream: %s", exc)
            allowed = False
        if not allowed:
            await websocket.close(CLOSE_POLICY)  # before accept: the handshake gets 403
            return
        await websocket.accept()
        try:
            start = await asyncio.wait_for(_read_start(websocket), start_message_timeout)
        except (TimeoutError, ProtocolError, WebSocketDisconnect) as exc:
            logger.warning("media stream closed before a valid 'start': %s", exc or "timeout")
            with contextlib.suppress(Exception):
                await websocket.close(CLOSE_POLICY)
            return
        call_id = (
            start.custom_parameters.get(CALL_ID_PARAMETER) or f"twilio-{start.call_sid.lower()}"
        )
        try:
            validate_call_id(call_id)
            line = PhoneLine(call_id, start, websocket)
        except InvalidCallId as exc:
            logger.warning("media stream refused: %s", exc)
            await websocket.close(CLOSE_POLICY)
            return
        try:
            calls.add(line)
        except ValueError as exc:
            logger.warning("media stream refused: %s", exc)
            await line.close(CLOSE_POLICY, str(exc))
            return
        starting = asyncio.ensure_future(_start_session(line, now))
        try:
            while not line.ended:
                text = await websocket.receive_text()
                try:
                    if (audio := inbound_audio(text)) is not None:
                        line.audio_received(audio)
                    else:
                        line.handle(parse(text))
                except ProtocolError as exc:
                    logger.debug("call %s: skipped a message: %s", call_id, exc)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the socket is gone (hung up, dropped, or closed by us)
        finally:
            if not line.ended:
                line.socket_gone()
            calls.remove(line)
            if not starting.done():
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)

    async def _start_session(line: PhoneLine, now: TwilioSettings) -> None:
        if launcher is None:
            return
        try:
            await launcher.start_session(line.call_id, call_type)
        except Exception as exc:
            limited = isinstance(exc, SessionLimitExceeded | LauncherNotRunning)
            logger.warning("call %s: no agent could take it: %s", line.call_id, exc)
            hang_up = not line.ended
            await line.close(CLOSE_TRY_LATER if limited else CLOSE_FAILED, "no agent")
            if hang_up and line.start.call_sid:
                try:
                    await client(now).hang_up(line.start.call_sid)
                except Exception as error:
                    logger.warning("call %s: hanging up failed: %s", line.call_id, error)

    @router.post(
        "/calls",
        status_code=201,
        summary="Dial a phone number (outbound call)",
        dependencies=marker,
    )
    async def place_call(request: Request) -> dict[str, Any]:
        try:
            body = CallIn.model_validate_json(await _read_body(request))
        except ValidationError as exc:
            raise HTTPException(
                400,
                f"invalid call request: {exc.errors()[0]['msg']} at "
                f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}",
            ) from None
        call_id = body.call_id or f"twilio-out-{uuid.uuid4().hex[:16]}"
        try:
            validate_call_id(call_id)
        except InvalidCallId as exc:
            raise HTTPException(400, str(exc)) from exc
        if permissions is not None:
            await permissions.require(request, "start_session", call_id)
        if not admitting():
            raise HTTPException(503, "not admitting sessions now (draining or at capacity)")
        now = current()
        caller_id = body.from_ or now.phone_number
        if not caller_id:
            raise HTTPException(
                400, "give 'from' (a Twilio number of yours) or set TWILIO_PHONE_NUMBER"
            )
        try:
            now.require_account()
        except TwilioNotConfigured as exc:
            raise HTTPException(503, str(exc)) from exc
        parameters = {
            CALL_ID_PARAMETER: call_id,
            "from": caller_id,
            "to": body.to,
            "direction": "outbound-api",
        }
        twiml = connect_stream_twiml(stream_url(now, str(request.url), request.headers), parameters)
        try:
            placed = await client(now).create_call(body.to, caller_id, twiml)
        except TwilioError as exc:
            status = exc.status or 0
            code = 400 if status in (400, 404) else 503 if status in (401, 403) else 502
            raise HTTPException(code, f"Twilio did not place the call: {exc}") from exc
        return {
            "call_id": call_id,
            "call_sid": placed.get("sid"),
            "status": placed.get("status"),
            "to": body.to,
            "from": caller_id,
        }

    return router


async def _read_start(websocket: WebSocket) -> StreamStart:
    """Skip ``connected``; the ``start`` message."""
    while True:
        message = parse(await websocket.receive_text())
        if message["event"] == "start":
            return StreamStart.parse(message)
        if message["event"] != "connected":
            raise ProtocolError(f"expected 'start', got {message['event']!r}")


async def _read_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"request body over {MAX_BODY_BYTES} bytes")
    return body


def _twiml(text: str) -> Response:
    return Response(text, media_type="application/xml")
