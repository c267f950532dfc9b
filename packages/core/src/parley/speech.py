"""`SpeechHandle`: one thing the agent says, awaitable until it has been played."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Generator
from typing import Any

_ids = itertools.count(1)


class SpeechHandle:
    """Returned by `AgentSession.say` and friends. ``await handle`` waits until the speech
    has been played out (or was interrupted); `interrupted` tells which."""

    def __init__(self, *, interruptible: bool = True, add_to_history: bool = True) -> None:
        self.id = f"speech_{next(_ids)}"
        self.interruptible = interruptible
        self.add_to_history = add_to_history
        self.interrupted = False
        self.text = ""  # what has been spoken so far (complete pieces)
        self.heard_text = ""  # set when done: what the user actually heard
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self._done.done()

    async def wait(self) -> None:
        await asyncio.shield(self._done)

    def __await__(self) -> Generator[Any, None, None]:
        return self.wait().__await__()

    def finish(self) -> None:
        """Mark the speech done (its runner calls this); awaiting it returns."""
        if not self._done.done():
            self._done.set_result(None)

    def __repr__(self) -> str:
        state = "interrupted" if self.interrupted else ("done" if self.done else "pending")
        return f"SpeechHandle({self.id}, {state})"
