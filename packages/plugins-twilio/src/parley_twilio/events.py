"""Events a phone call adds: the connection emits them and the session publishes them on
``session.events`` (an edge's own `SessionEvent`s reach the session's bus)."""

from __future__ import annotations

from dataclasses import dataclass

from parley.events import SessionEvent


@dataclass(frozen=True, slots=True)
class DTMFReceived(SessionEvent):
    """The caller pressed a key: ``digit`` is ``0``-``9``, ``*``, ``#`` (or ``A``-``D``).

    Subscribe on the session: ``@session.events.on(DTMFReceived)``.
    """

    digit: str
    call_id: str
    participant_id: str
