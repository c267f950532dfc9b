"""Turn detection contract: how likely is it that the user has finished their turn?"""

from __future__ import annotations

from abc import ABC, abstractmethod

from parley.chat import ChatContext


class TurnDetector(ABC):
    """Scores the conversation so far; the engine ends the turn when the score passes
    ``threshold``, and otherwise waits up to its endpointing maximum."""

    threshold: float = 0.5

    @abstractmethod
    async def end_of_turn_probability(self, ctx: ChatContext) -> float:
        """``ctx`` ends with the user's (possibly unfinished) message."""

    async def warm_up(self) -> None:
        """Load the model ahead of use (optional)."""

    async def aclose(self) -> None:
        """Release the model."""
