"""What the user heard of an interrupted reply, from how much of its audio was played.

A reply is spoken piece by piece (sentences or clauses); each piece's audio is assumed to
spread over its text in proportion to characters (TTS engines give no word timings through
the `TTS` contract). A word counts as heard when the playout reached its end. A piece whose
audio was still arriving when the reply stopped is measured against an estimate of its full
length (the voice's rate so far, or a typical one), not against the audio that happened to
be synthesized.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TYPICAL_SECONDS_PER_CHARACTER = 0.065  # ~15 characters a second, conversational speech

_WORD = re.compile(r"\S+")


@dataclass(slots=True)
class SpokenPiece:
    text: str
    seconds: float = 0.0  # audio of this piece handed to the playout
    complete: bool = False  # all of its audio arrived


def heard_text(
    pieces: list[SpokenPiece], played: float, seconds_per_character: float | None = None
) -> str:
    """The words of ``pieces`` whose audio ended within the first ``played`` seconds.

    ``seconds_per_character``: the voice's rate learned from earlier speech, for a piece still
    arriving when the reply has no finished piece of its own.
    """
    heard: list[str] = []
    remaining = played
    rate = _seconds_per_character(pieces) or seconds_per_character or TYPICAL_SECONDS_PER_CHARACTER
    for piece in pieces:
        if piece.seconds <= 0:
            break
        length = piece.seconds if piece.complete else max(piece.seconds, rate * len(piece.text))
        if remaining >= length - 1e-3:
            heard.append(piece.text)
            remaining -= length
            continue
        reached = len(piece.text) * max(0.0, remaining) / length  # characters played
        words = [m.group() for m in _WORD.finditer(piece.text) if m.end() <= reached + 1e-9]
        if words:
            heard.append(" ".join(words))
        break
    return " ".join(heard)


def _seconds_per_character(pieces: list[SpokenPiece]) -> float | None:
    seconds = sum(p.seconds for p in pieces if p.complete)
    characters = sum(len(p.text) for p in pieces if p.complete)
    return seconds / characters if characters and seconds else None


class SpeakingRate:
    """Seconds of audio per character over everything a voice has finished saying."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.characters = 0

    def add(self, piece: SpokenPiece) -> None:
        if piece.complete and piece.seconds > 0:
            self.seconds += piece.seconds
            self.characters += len(piece.text)

    @property
    def seconds_per_character(self) -> float | None:
        return self.seconds / self.characters if self.characters else None
