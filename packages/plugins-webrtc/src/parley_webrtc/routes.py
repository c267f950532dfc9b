"""Signaling and the demo page, as a FastAPI router any app can include.

Under ``/webrtc`` (change with ``prefix``):

- ``GET  /webrtc/``                                    the demo page (``?call=<id>`` picks the call)
- ``GET  /webrtc/calls``                               calls hosted here, with participant counts
- ``POST /webrtc/calls/{call_id}/offer``               ``{"sdp", "type": "offer", "user"?}`` →
  ``{"type": "answer", "sdp", "participant_id", ...}`` (ICE gathered: no trickle needed)
- ``POST /webrtc/calls/{call_id}/participants/{pid}/ice``    a trickled ICE candidate
- ``POST /webrtc/calls/{call_id}/participants/{pid}/leave``  hang up (body optional)

Errors are JSON ``{"detail": "..."}``: 400 bad JSON/SDP/candidate/call id, 401/403 refused by
a permission callback, 404 unknown call or participant, 413 body too large, 415 not JSON, 429
call full.

Permissions: given ``permissions`` (the server's `RouteContext.permissions`), joining a call
(offer, ICE, leave, the demo page for a call) needs the right to start a session on it, and
``GET /calls`` lists only the calls whose sessions the client may list. The static assets are
public. Offers are checked (`sdp_problem`) before they take a participant slot.

Several nodes: given the launcher's `SessionRegistry`, a request for a call whose session runs
on another node is answered with ``307 Temporary Redirect`` to the same path on that node
(``SessionRecord.node_address``), so any node can take any browser's signaling: no sticky
sessions. A 307 keeps the method and body; the demo page itself (a GET) is redirected too, so
the browser then talks to the owning node directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from aiortc.sdp import SessionDescription
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from parley.edge import User
from parley.launcher import (
    CallSessionLimitExceeded,
    InvalidCallId,
    LauncherError,
    LauncherNotRunning,
    SessionLimitExceeded,
    validate_call_id,
)
from parley.registry import SessionRegistry
from parley.store import StoreUnavailable
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_webrtc.connection import CallEnded, CallFull, WebRTCConnection
from parley_webrtc.peer import InvalidOffer, Peer
from parley_webrtc.rooms import Rooms, default_rooms

EnsureCall = Callable[[str], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024  # a browser offer with audio, video and data is ~6-12 KB
# What aiortc's DTLS can verify (RFC 8122 names; browsers send sha-256).
FINGERPRINT_ALGORITHMS = frozenset({"sha-256", "sha-384", "sha-512"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MEDIA = re.compile(r"^m=(\w+) (\d{1,5})(?:/\d+)? \S+")
ENDED_STATES = frozenset({"closing", "closed", "failed"})
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


class UserIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = Field(default=None, min_length=1, max_length=128)
    name: str = Field(default="Guest", min_length=1, max_length=128)


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sdp: str = Field(min_length=1)
    type: Literal["offer"] = "offer"
    user: UserIn | None = None


class CandidateIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    candidate: str | None = Field(default=None, max_length=1024)
    sdp_mid: str | None = Field(default=None, alias="sdpMid", max_length=64)
    sdp_mline_index: int | None = Field(default=None, alias="sdpMLineIndex", ge=0, le=64)


class CallPermissions(Protocol):
    """The server's permission callbacks as this router uses them (`RouteContext.permissions`)."""

    @property
    def join_call(self) -> Callable[..., Any]:
        """A FastAPI dependency for a route with ``{call_id}`` in its path."""

    async def allows(self, request: Request, right: str, call_id: str) -> bool:
        """Whether ``right`` (``"join_call"``, ``"list_sessions"``) is granted on ``call_id``."""


def valid_call_id(call_id: str) -> str:
    """Runs before the permission callbacks, so they only see valid call ids."""
    try:
        return validate_call_id(call_id)
    except InvalidCallId as exc:
        raise HTTPException(400, str(exc)) from None


def create_router(
    rooms: Rooms | None = None,
    *,
    prefix: str = "/webrtc",
    ensure_call: EnsureCall | None = None,
    registry: SessionRegistry | None = None,
    join_wait: float = 10.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    permissions: CallPermissions | None = None,
) -> APIRouter:
    """Build the signaling router.

    ``rooms``: where agents' calls are found (default: this process's). ``ensure_call``: an
    async callable run when an offer names a call no agent is on yet (a launcher can start a
    session there); the route then waits up to ``join_wait`` seconds for the agent to join.
    ``registry``: the launcher's `SessionRegistry`; requests for a call hosted by another
    node are redirected there (307). ``permissions``: who may join and list calls (see the
    module docstring); None allows everyone, for apps that guard the router themselves.
    """
    calls = rooms if rooms is not None else default_rooms
    router = APIRouter(prefix=prefix, tags=["webrtc"])
    joining: list[Any] = [Depends(valid_call_id)]
    # Routes that check rights in their handler (or serve only static files) say so, so that
    # a server guarding plugin routes by default leaves them to it (older servers: no marker).
    checks_itself: list[Any] = []
    if permissions is not None:
        joining.append(Depends(permissions.join_call))
        marker = getattr(permissions, "checks_itself", None)
        if marker is not None:
            checks_itself.append(Depends(marker))

    async def may(request: Request, right: str, call_id: str) -> bool:
        return permissions is None or await permissions.allows(request, right, call_id)

    async def owner_url(call_id: str, request: Request) -> str | None:
        """This request's URL on the node that hosts ``call_id``, if another node does."""
        if registry is None:
            return None
        try:
            records = await registry.list_sessions(call_id)
        except StoreUnavailable as exc:
            raise HTTPException(
                503, f"cannot look up call {call_id!r} in the session registry: {exc}"
            ) from exc
        elsewhere = [
            r for r in records if r.node_id != registry.node_id and r.state not in ENDED_STATES
        ]
        for record in elsewhere:
            base = node_base_url(record.node_address)
            if base is not None:
                query = f"?{request.url.query}" if request.url.query else ""
                return f"{base}{request.url.path}{query}"
        if elsewhere:
            raise HTTPException(
                421,
                f"call {call_id!r} runs on node {elsewhere[0].node_id!r}, which registered no "
                f"usable address ({elsewhere[0].node_address!r}) to send you to; give each node "
                "its address: SessionRegistry(store, address='http://HOST:PORT')",
            )
        return None

    async def start_call(call_id: str, request: Request) -> Response | None:
        """Run ``ensure_call``; a redirect if another node won the call meanwhile."""
        assert ensure_call is not None
        try:
            await ensure_call(call_id)
        except CallSessionLimitExceeded as exc:
            elsewhere = await owner_url(call_id, request)
            if elsewhere is not None:
                return RedirectResponse(elsewhere, status_code=307)
            raise HTTPException(429, f"cannot start an agent on call {call_id!r}: {exc}") from exc
        except InvalidCallId as exc:
            raise HTTPException(400, str(exc)) from exc
        except SessionLimitExceeded as exc:
            raise HTTPException(429, f"cannot start an agent on call {call_id!r}: {exc}") from exc
        except (LauncherNotRunning, StoreUnavailable) as exc:
            raise HTTPException(503, f"cannot start an agent on call {call_id!r}: {exc}") from exc
        except LauncherError as exc:
            raise HTTPException(
                500, f"starting an agent on call {call_id!r} failed: {exc}"
            ) from exc
        return None

    async def find_call(call_id: str, request: Request) -> WebRTCConnection | Response:
        """The call's room here, or a redirect to the node hosting it; 404 if neither."""
        room = calls.get(call_id)
        if room is None:
            elsewhere = await owner_url(call_id, request)
            if elsewhere is not None:
                return RedirectResponse(elsewhere, status_code=307)
            if ensure_call is not None:
                redirect = await start_call(call_id, request)
                if redirect is not None:
                    return redirect
                room = await calls.wait_for(call_id, join_wait)
        if room is None or room.closed:
            raise HTTPException(
                404,
                f"unknown call {call_id!r}: no agent is on it in this process. "
                "Start an agent session for the call first.",
            )
        return room

    def find_peer(room: WebRTCConnection, participant_id: str) -> Peer:
        peer = room.peer(participant_id)
        if peer is None:
            raise HTTPException(
                404, f"no participant {participant_id!r} on call {room.call.call_id!r}"
            )
        return peer

    @router.get("", include_in_schema=False, dependencies=checks_itself)
    async def demo_redirect(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{request.url.path}/{query}")

    @router.get(
        "/", response_class=HTMLResponse, summary="Browser demo page", dependencies=checks_itself
    )
    async def demo_page(request: Request, call: str | None = None) -> Response:
        if call:
            valid_call_id(call)
            if not await may(request, "join_call", call):
                raise HTTPException(403, f"not allowed to join call {call!r}")
        if call and calls.get(call) is None:
            try:
                elsewhere = await owner_url(call, request)
            except HTTPException:
                elsewhere = None  # serve the page; joining will say what is wrong
            if elsewhere is not None:  # the page then signals to the hosting node directly
                return RedirectResponse(elsewhere, status_code=307)
        return HTMLResponse(_static_text("index.html"))

    @router.get("/static/{name}", include_in_schema=False, dependencies=checks_itself)
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_static_text(name), media_type=STATIC_FILES[name])

    @router.get("/favicon.ico", include_in_schema=False, dependencies=checks_itself)
    async def favicon() -> Response:
        return favicon_response()

    @router.get("/calls", summary="Calls hosted by this process", dependencies=checks_itself)
    async def list_calls(request: Request) -> dict[str, Any]:
        visible = [room for room in calls if await may(request, "list_sessions", room.call.call_id)]
        return {
            "calls": [
                {
                    "call_id": room.call.call_id,
                    "call_type": room.call.call_type,
                    "agent": {"id": room.agent_user.id, "name": room.agent_user.name},
                    "participants": len(room.peers),
                    "max_participants": room.max_participants,
                }
                for room in visible
            ]
        }

    @router.post(
        "/calls/{call_id}/offer",
        summary="Join a call: SDP offer in, answer out",
        response_model=None,
        dependencies=joining,
    )
    async def offer(call_id: str, request: Request) -> dict[str, Any] | Response:
        body = _validate(OfferIn, await _read_json(request, max_body_bytes))
        problem = sdp_problem(body.sdp)
        if problem:
            raise HTTPException(400, f"malformed SDP offer: {problem}")
        room = await find_call(call_id, request)
        if isinstance(room, Response):
            return room
        user = None
        if body.user is not None:
            user = User(name=body.user.name, id=body.user.id or body.user.name)
        try:
            participant, answer = await room.accept_offer(body.sdp, user)
        except CallFull as exc:
            raise HTTPException(429, str(exc)) from exc
        except CallEnded as exc:
            raise HTTPException(404, str(exc)) from exc
        except InvalidOffer as exc:
            raise HTTPException(400, f"malformed SDP offer: {exc}") from exc
        return {
            "type": "answer",
            "sdp": answer,
            "call_id": call_id,
            "participant_id": participant.id,
            "agent": {"id": room.agent_user.id, "name": room.agent_user.name},
        }

    @router.post(
        "/calls/{call_id}/participants/{participant_id}/ice",
        summary="Trickle ICE",
        response_model=None,
        dependencies=joining,
    )
    async def ice(call_id: str, participant_id: str, request: Request) -> dict[str, Any] | Response:
        body = _validate(CandidateIn, await _read_json(request, max_body_bytes))
        room = await find_call(call_id, request)
        if isinstance(room, Response):
            return room
        peer = find_peer(room, participant_id)
        try:
            await peer.add_candidate(body.candidate, body.sdp_mid, body.sdp_mline_index)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"ok": True}

    @router.post(
        "/calls/{call_id}/participants/{participant_id}/leave",
        summary="Hang up",
        response_model=None,
        dependencies=joining,
    )
    async def leave(
        call_id: str, participant_id: str, request: Request
    ) -> dict[str, Any] | Response:
        room = await find_call(call_id, request)
        if isinstance(room, Response):
            return room
        find_peer(room, participant_id)
        await room.remove_participant(participant_id, "left")
        return {"left": True, "participant_id": participant_id}

    return router


def node_base_url(address: str | None) -> str | None:
    """``scheme://host[:port]`` for a registered node address (``host:port`` means http)."""
    if not address or not address.strip():
        return None
    address = address.strip().rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return address


def sdp_problem(sdp: str) -> str | None:
    """What makes ``sdp`` unusable as a WebRTC offer, or None if it looks sound.

    Checked before the offer takes a participant slot: everything aiortc would otherwise
    accept and fail on later (or never), from control bytes to a call without audio.
    """
    if _CONTROL.search(sdp):
        return "it contains control characters (e.g. NUL bytes)"
    lines = [line.strip() for line in sdp.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        return "it must start with the line 'v=0'"
    media = [line for line in lines if line.startswith("m=")]
    if not media:
        return "it has no media section ('m=' line)"
    for line in media:
        match = _MEDIA.match(line)
        if match is None or int(match.group(2)) > 65535:
            return f"malformed media line {line[:80]!r} (m=<kind> <port 0-65535> <proto> <fmt>)"
    if not any(line.startswith("m=audio ") for line in media):
        return "it has no audio section ('m=audio'): the call needs the participant's audio"
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        return "it has no ICE credentials ('a=ice-ufrag:')"
    fingerprints = [
        line.removeprefix("a=fingerprint:") for line in lines if line.startswith("a=fingerprint:")
    ]
    if not fingerprints:
        return "it has no DTLS fingerprint ('a=fingerprint:')"
    for fingerprint in fingerprints:
        algorithm = fingerprint.split(" ", 1)[0].lower()
        if algorithm not in FINGERPRINT_ALGORITHMS:
            return (
                f"unsupported DTLS fingerprint algorithm {algorithm[:20]!r}; use one of "
                f"{', '.join(sorted(FINGERPRINT_ALGORITHMS))}"
            )
    for line in lines:
        if line.startswith("a=candidate:") and (problem := _candidate_problem(line)):
            return problem
    try:
        SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError…
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    return None


def _candidate_problem(line: str) -> str | None:
    # candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
    parts = line.split()
    if len(parts) < 8 or not parts[5].isdigit() or int(parts[5]) > 65535:
        return f"malformed ICE candidate line {line[:80]!r}"
    return None


async def _read_json(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(
            415,
            f"expected Content-Type application/json, got {content_type or 'none'!r}; "
            "send the body as JSON",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body is over the {limit}-byte limit")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from exc


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise HTTPException(400, f"invalid request body: {problems}") from exc


def favicon_response() -> Response:
    """The page's icon (an SVG, which browsers take at ``/favicon.ico`` too)."""
    return Response(
        _static_text("favicon.svg"),
        media_type=STATIC_FILES["favicon.svg"],
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _static_text(name: str) -> str:
    return resources.files("parley_webrtc").joinpath("static", name).read_text("utf-8")


router = create_router()
"""The default router: signaling for calls joined in this process, at ``/webrtc``."""
