"""Text-to-speech contract: stream audio frames for a piece of text.

The engine always calls `synthesize` sentence by sentence (or clause by clause), so speech
starts before the LLM has finished, whatever the TTS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from parley.frames import AudioFrame


@dataclass(frozen=True, slots=True)
class TTSCapabilities:
    streaming: bool = True  # audio arrives in pieces before the whole text is synthesized
    sample_rate: int = 24000
    channels: int = 1
    languages: tuple[str, ...] = ("en",)


class TTS(ABC):
    capabilities: TTSCapabilities = TTSCapabilities()

    @abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Stream speech for ``text``. Cancelling the iteration must stop synthesis."""

    async def warm_up(self) -> None:
        """Load voices or open connections ahead of the first sentence (optional)."""

    async def aclose(self) -> None:
        """Release voices and connections."""
