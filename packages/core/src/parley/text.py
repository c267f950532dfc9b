"""Cut streamed LLM text into speakable pieces, so TTS starts before the LLM finishes."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or …) followed by whitespace; not after common abbreviations,
# single initials or inside numbers like 3.14 (no whitespace follows the dot there).
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_CLAUSE_END = re.compile(r"[,;:—]\s")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "dept",
        "est",
        "fig",
        "inc",
        "ltd",
        "no",
        "mt",
    ]
)


class SentenceSplitter:
    """Feed text deltas with `push`; get complete pieces back; `flush` returns the rest.

    A long first sentence is cut at a clause boundary (comma, semicolon, colon, dash) once it
    has ``first_clause_min_chars`` characters, so the first audio comes sooner.
    """

    def __init__(
        self,
        min_chars: int = 8,
        first_clause_min_chars: int = 60,
        first_piece_words: int | None = None,
    ) -> None:
        self.min_chars = min_chars
        self.first_clause_min_chars = first_clause_min_chars
        self.first_piece_words = first_piece_words
        self._buffer = ""
        self._emitted = 0

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while piece := self._next_piece():
            out.append(piece)
        return out

    def flush(self) -> list[str]:
        rest = self._buffer.strip()
        self._buffer = ""
        if rest:
            self._emitted += 1
            return [rest]
        return []

    def _next_piece(self) -> str | None:
        buffer = self._buffer
        search_from = 0
        while match := _SENTENCE_END.search(buffer, search_from):
            end = match.end()
            candidate = buffer[:end].strip()
            if len(candidate) >= self.min_chars and not _ends_with_abbreviation(
                buffer[: match.start() + 1]
            ):
                self._buffer = buffer[end:]
                self._emitted += 1
                return candidate
            search_from = end
        if self._emitted == 0 and self.first_piece_words:
            words = buffer.split(" ")
            # complete words only: the last item may still be growing
            if len([w for w in words[:-1] if w.strip()]) >= self.first_piece_words:
                cut = len(" ".join(words[: self.first_piece_words + (buffer[:1] == " ")]))
                piece = buffer[:cut].strip()
                if len(piece) >= self.min_chars:
                    self._buffer = buffer[cut:]
                    self._emitted += 1
                    return piece
        if self._emitted == 0 and len(buffer) >= self.first_clause_min_chars:
            last = None
            for match in _CLAUSE_END.finditer(buffer):
                if match.end() >= self.min_chars:
                    last = match
            if last is not None:
                self._buffer = buffer[last.end() :]
                self._emitted += 1
                return buffer[: last.end()].strip()
        return None


def _ends_with_abbreviation(text: str) -> bool:
    word = text.rstrip(".").rsplit(None, 1)[-1].lower() if text.strip(". ") else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split a whole text into the pieces `SentenceSplitter` would produce."""
    splitter = SentenceSplitter()
    return splitter.push(text) + splitter.flush()
