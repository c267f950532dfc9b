"""Video processors: parts that watch the participants' video (detection, captioning, …).

A processor gets frames as they arrive; the Edge keeps only the latest frame when a reader
lags, so a slow processor sees fewer frames and never a backlog. Heavy model work must run
off the event loop (e.g. ``await asyncio.to_thread(...)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from parley.edge import Participant
from parley.frames import VideoFrame

if TYPE_CHECKING:
    from parley.session import AgentSession


class VideoProcessor(ABC):
    @abstractmethod
    async def process(self, frame: VideoFrame, participant: Participant) -> None:
        """Handle one frame."""

    async def start(self, session: AgentSession) -> None:
        """The session started (optional): keep ``session`` to speak or add context."""

    async def aclose(self) -> None:
        """The session closed (optional)."""
