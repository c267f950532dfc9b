"""Signaling and the demo page, as a FastAPI router any app can include.

Under ``/webrtc`` (change with ``prefix``):

- ``GET  /webrtc/``                                    the demo page (``?call=<id>`` picks the call)
- ``GET  /webrtc/calls``                               calls hosted here, with participant counts
- ``POST /webrtc/calls/{call_id}/offer``               ``{"sdp", "type": "offer", "user"?}`` →
  ``{"type": "answer", "sdp", "participant_id", ...}`` (ICE gathered: no trickle needed)
- ``POST /webrtc/calls/{call_id}/participants/{pid}/ice``    a trickled ICE candidate
- ``POST /webrtc/calls/{call_id}/participants/{pid}/leave``  hang up (body optional)

Errors are JSON ``{"detail": "..."}``: 400 bad JSON/SDP/candidate, 404 unknown call or
participant, 413 body too large, 415 not JSON, 429 call full.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from parley.edge import User
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_webrtc.connection import CallEnded, CallFull, WebRTCConnection
from parley_webrtc.peer import InvalidOffer
from parley_webrtc.rooms import Rooms, default_rooms

EnsureCall = Callable[[str], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)

MAX_BODY_BYTES = 64 * 1024  # a browser offer with audio, video and data is ~6-12 KB
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
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


def create_router(
    rooms: Rooms | None = None,
    *,
    prefix: str = "/webrtc",
    ensure_call: EnsureCall | None = None,
    join_wait: float = 10.0,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> APIRouter:
    """Build the signaling router.

    ``rooms``: where agents' calls are found (default: this process's). ``ensure_call``: an
    async callable run when an offer names a call no agent is on yet (a launcher can start a
    session there); the route then waits up to ``join_wait`` seconds for the agent to join.
    """
    calls = rooms if rooms is not None else default_rooms
    router = APIRouter(prefix=prefix, tags=["webrtc"])

    async def find_call(call_id: str) -> WebRTCConnection:
        room = calls.get(call_id)
        if room is None and ensure_call is not None:
            await ensure_call(call_id)
            room = await calls.wait_for(call_id, join_wait)
        if room is None or room.closed:
            raise HTTPException(
                404,
                f"unknown call {call_id!r}: no agent is on it in this process. "
                "Start an agent session for the call first.",
            )
        return room

    def find_peer(room: WebRTCConnection, participant_id: str) -> None:
        if room.peer(participant_id) is None:
            raise HTTPException(
                404, f"no participant {participant_id!r} on call {room.call.call_id!r}"
            )

    @router.get("", include_in_schema=False)
    async def demo_redirect(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{request.url.path}/{query}")

    @router.get("/", response_class=HTMLResponse, summary="Browser demo page")
    async def demo_page() -> HTMLResponse:
        return HTMLResponse(_static_text("index.html"))

    @router.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_static_text(name), media_type=STATIC_FILES[name])

    @router.get("/calls", summary="Calls hosted by this process")
    async def list_calls() -> dict[str, Any]:
        return {
            "calls": [
                {
                    "call_id": room.call.call_id,
                    "call_type": room.call.call_type,
                    "agent": {"id": room.agent_user.id, "name": room.agent_user.name},
                    "participants": len(room.peers),
                    "max_participants": room.max_participants,
                }
                for room in calls
            ]
        }

    @router.post("/calls/{call_id}/offer", summary="Join a call: SDP offer in, answer out")
    async def offer(call_id: str, request: Request) -> dict[str, Any]:
        body = _validate(OfferIn, await _read_json(request, max_body_bytes))
        problem = sdp_problem(body.sdp)
        if problem:
            raise HTTPException(400, f"malformed SDP offer: {problem}")
        room = await find_call(call_id)
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

    @router.post("/calls/{call_id}/participants/{participant_id}/ice", summary="Trickle ICE")
    async def ice(call_id: str, participant_id: str, request: Request) -> dict[str, Any]:
        body = _validate(CandidateIn, await _read_json(request, max_body_bytes))
        room = await find_call(call_id)
        find_peer(room, participant_id)
        peer = room.peer(participant_id)
        assert peer is not None
        try:
            await peer.add_candidate(body.candidate, body.sdp_mid, body.sdp_mline_index)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"ok": True}

    @router.post("/calls/{call_id}/participants/{participant_id}/leave", summary="Hang up")
    async def leave(call_id: str, participant_id: str) -> dict[str, Any]:
        room = await find_call(call_id)
        find_peer(room, participant_id)
        await room.remove_participant(participant_id, "left")
        return {"left": True, "participant_id": participant_id}

    return router


def sdp_problem(sdp: str) -> str | None:
    """What makes ``sdp`` unusable as a WebRTC offer, or None if it looks sound."""
    lines = [line.strip() for line in sdp.splitlines() if line.strip()]
    if not lines or lines[0] != "v=0":
        return "it must start with the line 'v=0'"
    if not any(line.startswith("m=") for line in lines):
        return "it has no media section ('m=' line)"
    if not any(line.startswith("a=ice-ufrag:") for line in lines):
        return "it has no ICE credentials ('a=ice-ufrag:')"
    if not any(line.startswith("a=fingerprint:") for line in lines):
        return "it has no DTLS fingerprint ('a=fingerprint:')"
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


def _static_text(name: str) -> str:
    return resources.files("parley_webrtc").joinpath("static", name).read_text("utf-8")


router = create_router()
"""The default router: signaling for calls joined in this process, at ``/webrtc``."""
