"""SessionRegistry: every node's sessions in one shared store, so any node can find or close any.

Each node keeps the sessions it runs in memory and mirrors them into a `SessionStore` under a
time-to-live; `heartbeat` re-writes them (and the node's own record) before they expire, so a
node that dies simply disappears from the registry one TTL later.

- The per-call session limit is one atomic store operation (`SessionStore.add_member`), so it
  holds exactly across nodes under a concurrent burst.
- The limit also holds through a store that loses its data (restarted without persistence):
  heartbeats re-claim each slot under the limit it was reserved with, so the session that
  claims a slot first after the loss keeps it (whether it re-registers or starts anew) and a
  session whose call is then full is closed through `on_close_requested`, with a warning
  giving the reason. (A node's total capacity is counted in its own memory, never in the
  store, so no data loss affects it.)
- A close requested on any node reaches the owning node at once over publish/subscribe, and
  also leaves a durable marker that the owner's next heartbeat picks up if the message was
  lost (for instance while the store was briefly unreachable).
- When the store is unreachable, operations raise `StoreUnavailable`, `healthy` turns False
  (logged once), running sessions are left alone, and the next successful operation or
  heartbeat (which re-writes everything this node owns) recovers the registry by itself.

Every node sharing a store should use the same ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import quote

from parley.store import SessionStore, StoreUnavailable

logger = logging.getLogger("parley.registry")

T = TypeVar("T")

CloseRequestHandler = Callable[[str, str], Awaitable[None]]
"""``async def on_close_requested(call_id, session_id)``: close that session on this node."""

_SESSIONS = "registry:session:"
_CALLS = "registry:call:"
_NODES = "registry:node:"
_CLOSES = "registry:closes:"
_CONTROL = "registry:control:"
_FAILED = "registry:failed:"


def _part(text: str) -> str:
    # Percent-encode each key component: ':' can then only be a separator, and glob
    # characters never reach the store at all.
    return quote(text, safe="")


def _session_key(call_id: str, session_id: str) -> str:
    return f"{_SESSIONS}{_part(call_id)}:{_part(session_id)}"


def _failed_key(call_id: str) -> str:
    return f"{_FAILED}{_part(call_id)}"


def _call_key(call_id: str) -> str:
    return _CALLS + _part(call_id)


def _node_key(node_id: str) -> str:
    return _NODES + _part(node_id)


def _closes_key(node_id: str) -> str:
    return _CLOSES + _part(node_id)


def _control_channel(node_id: str) -> str:
    return _CONTROL + _part(node_id)


def _close_marker(call_id: str, session_id: str) -> str:
    return json.dumps([call_id, session_id])


@dataclass(frozen=True)
class _Record:
    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        values = json.loads(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class SessionRecord(_Record):
    """One session as every node sees it. Times are Unix timestamps (seconds)."""

    session_id: str
    call_id: str
    call_type: str
    node_id: str
    node_address: str | None
    state: str
    started_at: float
    heartbeat_at: float
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class NodeRecord(_Record):
    """One node as every node sees it. ``capacity`` None means unlimited."""

    node_id: str
    address: str | None
    capacity: int | None
    sessions: int
    draining: bool
    heartbeat_at: float


@dataclass
class _Local:
    """A session this node owns: reserved, and registered once ``record`` is set."""

    call_id: str
    session_id: str
    limit: int | None = None  # the per-call limit it was reserved under, kept on re-claims
    record: SessionRecord | None = None
    released: bool = False
    close_delivered: bool = False
    # Serializes store writes for this session so a heartbeat never resurrects it after release.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class SessionRegistry:
    """Records this node's sessions in ``store`` and finds or closes sessions on any node.

    ``ttl`` is how long records outlive the last heartbeat. With ``auto_heartbeat`` (default)
    `start` runs a loop calling `heartbeat` every ``heartbeat_interval`` seconds (default
    ``ttl / 3``); an owner with its own maintenance loop may pass ``auto_heartbeat=False`` and
    call `heartbeat` itself, at least once per ``ttl``.
    """

    def __init__(
        self,
        store: SessionStore,
        node_id: str | None = None,
        ttl: float = 30.0,
        address: str | None = None,
        *,
        capacity: int | None = None,
        heartbeat_interval: float | None = None,
        auto_heartbeat: bool = True,
        on_close_requested: CloseRequestHandler | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        interval = ttl / 3 if heartbeat_interval is None else heartbeat_interval
        if not 0 < interval < ttl:
            raise ValueError(
                f"heartbeat_interval must be between 0 and ttl ({ttl}), got {interval}: "
                "records would expire between heartbeats"
            )
        self.store = store
        self.node_id = node_id or default_node_id()
        self.ttl = ttl
        self.address = address
        self.capacity = capacity
        self.heartbeat_interval = interval
        self.auto_heartbeat = auto_heartbeat
        self.on_close_requested = on_close_requested
        self.draining = False
        self._local: dict[tuple[str, str], _Local] = {}
        self._healthy = False
        self._outage = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    def __repr__(self) -> str:
        return f"SessionRegistry(node_id={self.node_id!r}, store={self.store!r}, ttl={self.ttl})"

    # -- health -------------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """True while the store answers; False from the first failure until it answers again."""
        return self._healthy

    def _mark_healthy(self) -> None:
        if not self._healthy and self._outage:
            logger.warning(
                "session store reachable again; registry of node %s recovered", self.node_id
            )
        self._healthy = True
        self._outage = False

    def _mark_unhealthy(self, exc: BaseException) -> None:
        if not self._outage:
            logger.error(
                "session registry of node %s cannot reach its store: %s. Running sessions keep "
                "running; registry operations fail until the store is back (retried every "
                "heartbeat)",
                self.node_id,
                exc,
            )
        self._healthy = False
        self._outage = True

    async def _io(self, operation: Awaitable[T]) -> T:
        try:
            result = await operation
        except StoreUnavailable as exc:
            self._mark_unhealthy(exc)
            raise
        self._mark_healthy()
        return result

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to this node's close requests, write the node record, start heartbeats.

        Never fails because the store is unreachable: `healthy` stays False and the registry
        keeps retrying in the background.
        """
        if self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name=f"registry-listen-{self.node_id}")
        await self._listening.wait()  # subscribed, or the first attempt failed
        await self.heartbeat()
        if self.auto_heartbeat:
            self._heartbeats = asyncio.create_task(
                self._heartbeat_loop(), name=f"registry-heartbeat-{self.node_id}"
            )

    async def stop(self) -> None:
        """Stop listening and heartbeating; remove this node's remaining records (best effort)."""
        tasks = [t for t in (self._listener, self._heartbeats, *self._tasks) if t is not None]
        self._listener = self._heartbeats = None
        self._listening.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(StoreUnavailable):
            for call_id, session_id in list(self._local):
                await self.release(call_id, session_id)
            await self._io(self.store.delete(_node_key(self.node_id)))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- this node's sessions -------------------------------------------------------------------

    async def reserve(self, call_id: str, session_id: str, limit: int | None = None) -> bool:
        """Claim a slot for ``session_id`` on ``call_id``; False if ``limit`` slots are taken.

        Atomic across every node sharing the store. The slot lives until `release` (or one
        TTL after this node's last heartbeat). Reserving an already-reserved session is True.
        """
        added = await self._io(
            self.store.add_member(_call_key(call_id), session_id, self.ttl, limit)
        )
        if added:
            self._local.setdefault((call_id, session_id), _Local(call_id, session_id, limit))
        return added

    async def register(
        self,
        call_id: str,
        session_id: str,
        *,
        call_type: str = "default",
        state: str = "starting",
        metrics: dict[str, Any] | None = None,
        started_at: float | None = None,
    ) -> SessionRecord:
        """Record a session this node runs (after `reserve` when a per-call limit applies).

        The record is kept locally first: if the store is unreachable this raises
        `StoreUnavailable`, and the next successful heartbeat writes it.
        """
        key = (call_id, session_id)
        local = self._local.get(key)
        reserved = local is not None
        if local is None:
            local = self._local[key] = _Local(call_id, session_id)
        now = time.time()
        async with local.lock:
            local.record = SessionRecord(
                session_id=session_id,
                call_id=call_id,
                call_type=call_type,
                node_id=self.node_id,
                node_address=self.address,
                state=state,
                started_at=now if started_at is None else started_at,
                heartbeat_at=now,
                metrics=dict(metrics or {}),
            )
            if not reserved:
                await self._io(self.store.add_member(_call_key(call_id), session_id, self.ttl))
            await self._write(local.record)
        return local.record

    async def update(
        self,
        call_id: str,
        session_id: str,
        *,
        state: str | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> SessionRecord:
        """Change a registered session's state, metrics snapshot or error (None: unchanged).

        Raises KeyError if this node has not registered the session.
        """
        local = self._local.get((call_id, session_id))
        if local is None or local.record is None:
            raise KeyError(
                f"session {session_id!r} of call {call_id!r} is not registered on this node"
            )
        async with local.lock:
            assert local.record is not None
            changes: dict[str, Any] = {"heartbeat_at": time.time()}
            if state is not None:
                changes["state"] = state
            if metrics is not None:
                changes["metrics"] = dict(metrics)
            if error is not None:
                changes["error"] = error
            local.record = dataclasses.replace(local.record, **changes)
            if not local.released:
                await self._write(local.record)
        return local.record

    async def release(self, call_id: str, session_id: str) -> None:
        """Forget a session: free its slot and delete its record (idempotent).

        If the store is unreachable this raises `StoreUnavailable`; the records then expire
        one TTL later because nothing refreshes them any more.
        """
        local = self._local.pop((call_id, session_id), None)
        if local is not None:
            async with local.lock:
                local.released = True
        await self._io(self.store.remove_member(_call_key(call_id), session_id))
        await self._io(self.store.delete(_session_key(call_id, session_id)))
        if local is not None and local.close_delivered:
            await self._io(
                self.store.remove_member(
                    _closes_key(self.node_id), _close_marker(call_id, session_id)
                )
            )

    async def record_failure(
        self, call_id: str, session_id: str, *, call_type: str = "default", error: str
    ) -> SessionRecord:
        """Record a session that failed to start: visible as ``failed`` with its error for
        one TTL, holding no per-call slot, and not kept alive by heartbeats."""
        self._local.pop((call_id, session_id), None)
        now = time.time()
        record = SessionRecord(
            session_id=session_id,
            call_id=call_id,
            call_type=call_type,
            node_id=self.node_id,
            node_address=self.address,
            state="failed",
            started_at=now,
            heartbeat_at=now,
            error=error,
        )
        await self._io(self.store.remove_member(_call_key(call_id), session_id))
        await self._io(self.store.add_member(_failed_key(call_id), session_id, self.ttl))
        await self._write(record)
        return record

    async def set_draining(self, draining: bool = True) -> None:
        """Mark this node as draining (no new sessions) in its node record."""
        self.draining = draining
        with contextlib.suppress(StoreUnavailable):
            await self._write_node()

    def local_sessions(self) -> list[SessionRecord]:
        """The sessions this node has registered, from memory (works while the store is down)."""
        return [local.record for local in self._local.values() if local.record is not None]

    async def _write(self, record: SessionRecord) -> None:
        key = _session_key(record.call_id, record.session_id)
        await self._io(self.store.set(key, record.to_json(), self.ttl))

    async def _write_node(self) -> None:
        record = NodeRecord(
            node_id=self.node_id,
            address=self.address,
            capacity=self.capacity,
            sessions=len(self._local),
            draining=self.draining,
            heartbeat_at=time.time(),
        )
        await self._io(self.store.set(_node_key(self.node_id), record.to_json(), self.ttl))

    # -- heartbeat ----------------------------------------------------------------------------

    async def heartbeat(self) -> bool:
        """Refresh this node's records, then act on close markers left for it.

        Returns `healthy`. Never raises `StoreUnavailable`: an outage is logged and reported
        through `healthy`, and the next heartbeat that reaches the store re-writes every record
        this node owns (they may have expired meanwhile).
        """
        try:
            for local in list(self._local.values()):
                await self._refresh(local)
            await self._write_node()
            await self._check_close_markers()
        except StoreUnavailable:
            return False  # already logged and marked by _io
        return True

    async def _refresh(self, local: _Local) -> None:
        async with local.lock:
            if local.released:
                return
            # add_member (not refresh_member): re-creates the slot if it expired in an outage
            # or the store lost its data, under the limit, since other sessions may hold it now.
            claimed = await self._io(
                self.store.add_member(
                    _call_key(local.call_id), local.session_id, self.ttl, local.limit
                )
            )
            if not claimed:
                if local.close_delivered:
                    return  # closing already
                logger.warning(
                    "closing session %s of call %s: its slot was lost from the session store "
                    "and the call's %s slot(s) are taken by sessions that re-claimed theirs first",
                    local.session_id,
                    local.call_id,
                    local.limit,
                )
                self._deliver_close(local.call_id, local.session_id)
                return
            if local.record is not None:
                local.record = dataclasses.replace(local.record, heartbeat_at=time.time())
                await self._write(local.record)

    async def _check_close_markers(self) -> None:
        closes = _closes_key(self.node_id)
        for marker in await self._io(self.store.members(closes)):
            try:
                call_id, session_id = json.loads(marker)
            except (ValueError, TypeError):
                call_id = session_id = ""
            if not self._deliver_close(str(call_id), str(session_id)):
                await self._io(self.store.remove_member(closes, marker))  # not ours any more

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.heartbeat()
            except Exception:
                logger.exception("registry heartbeat of node %s failed", self.node_id)

    # -- any node's sessions ------------------------------------------------------------------

    async def get(self, call_id: str, session_id: str) -> SessionRecord | None:
        """The session's record from whichever node runs it, or None."""
        data = await self._io(self.store.get(_session_key(call_id, session_id)))
        return _decode(SessionRecord, data)

    async def list_sessions(self, call_id: str | None = None) -> list[SessionRecord]:
        """Every registered session (of ``call_id`` if given) on every node, oldest first."""
        if call_id is None:
            keys = await self._io(self.store.keys(_SESSIONS))
        else:
            members = await self._io(self.store.members(_call_key(call_id)))
            failed = await self._io(self.store.members(_failed_key(call_id)))
            keys = [_session_key(call_id, session_id) for session_id in (*members, *failed)]
        values = await self._io(self.store.get_many(keys))
        records = [r for r in (_decode(SessionRecord, v) for v in values) if r is not None]
        return sorted(records, key=lambda r: (r.started_at, r.session_id))

    async def list_nodes(self) -> list[NodeRecord]:
        """Every live node (one that heartbeated within the TTL)."""
        values = await self._io(self.store.get_many(await self._io(self.store.keys(_NODES))))
        nodes = [n for n in (_decode(NodeRecord, v) for v in values) if n is not None]
        return sorted(nodes, key=lambda n: n.node_id)

    async def request_close(self, call_id: str, session_id: str) -> bool:
        """Ask the node running the session to close it; False if no such session is registered.

        The owner hears at once through publish/subscribe and calls its `on_close_requested`;
        a durable marker makes its next heartbeat deliver the request if the message was lost.
        """
        local = self._local.get((call_id, session_id))
        if local is not None and not local.released:
            return self._deliver_close(call_id, session_id)
        record = await self.get(call_id, session_id)
        if record is None or record.node_id == self.node_id:
            return False  # unknown, or a stale record of a session this node no longer runs
        marker = _close_marker(call_id, session_id)
        await self._io(self.store.add_member(_closes_key(record.node_id), marker, 2 * self.ttl))
        message = {"type": "close", "call_id": call_id, "session_id": session_id}
        await self._io(
            self.store.publish(_control_channel(record.node_id), json.dumps(message).encode())
        )
        return True

    # -- receiving close requests -------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self.store.subscribe(_control_channel(self.node_id)) as messages:
                    self._listening.set()
                    delay = 0.1
                    async for message in messages:
                        self._on_message(message)
            except StoreUnavailable as exc:
                self._mark_unhealthy(exc)
            except Exception:
                logger.exception("registry listener of node %s failed; restarting", self.node_id)
            self._listening.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_message(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            kind, call_id, session_id = message["type"], message["call_id"], message["session_id"]
        except (ValueError, TypeError, KeyError):
            logger.warning(
                "ignoring a malformed control message for node %s: %r", self.node_id, data
            )
            return
        if kind == "close":
            self._deliver_close(str(call_id), str(session_id))

    def _deliver_close(self, call_id: str, session_id: str) -> bool:
        """Run the close callback for a local session once; False if the session is not ours."""
        local = self._local.get((call_id, session_id))
        if local is None or local.released:
            return False
        if not local.close_delivered:
            local.close_delivered = True
            task = asyncio.create_task(self._run_close_callback(local))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _run_close_callback(self, local: _Local) -> None:
        callback = self.on_close_requested
        if callback is None:
            logger.warning(
                "close requested for session %s of call %s on node %s, but the registry has no "
                "on_close_requested callback; set one so the session can be closed",
                local.session_id,
                local.call_id,
                self.node_id,
            )
            return
        try:
            await callback(local.call_id, local.session_id)
        except Exception:
            logger.exception(
                "closing session %s of call %s failed; a close requested from another node is "
                "retried at the next heartbeat",
                local.session_id,
                local.call_id,
            )
            local.close_delivered = False
            return
        with contextlib.suppress(StoreUnavailable):
            marker = _close_marker(local.call_id, local.session_id)
            await self._io(self.store.remove_member(_closes_key(self.node_id), marker))


RecordT = TypeVar("RecordT", SessionRecord, NodeRecord)


def _decode(cls: type[RecordT], data: bytes | None) -> RecordT | None:
    if data is None:
        return None
    try:
        return cls.from_json(data)
    except (ValueError, TypeError) as exc:
        logger.warning("ignoring an unreadable %s in the session store: %s", cls.__name__, exc)
        return None
