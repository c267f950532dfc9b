"""Cut streamed LLM text into speakable pieces, so TTS starts before the LLM finishes."""

from __future__ import annotations

import re

# Closing quotes and brackets stay with the sentence they close.
_CLOSING = "\"')]”’」』）】〕》〉"
_CLOSERS = re.escape(_CLOSING)
# A sentence ends at . ! ? (or …) followed by whitespace, so 3.14 and example.com stay whole;
# or at Chinese/Japanese 。！？ (and ｡), which no space follows: there the next character only
# has to be known, so that a closing quote can join the sentence first. (The leading lookahead
# only makes the scan fast: the regex engine skips to a punctuation mark.)
_SENTENCE_END = re.compile(
    rf"(?=[.!?…。｡！？])(?:[.!?…]+[{_CLOSERS}]*\s|[。｡！？]+[{_CLOSERS}]*(?=[^{_CLOSERS}]))"
)
# What a sentence end is made of before the text that decides it: a match that more text could
# still complete starts in the run of these at the end of the buffer.
_END_RUN = ".!?…。｡！？" + _CLOSING
# Clause ends for the first piece: comma, semicolon, colon, dash; and the full-width ，；：
_CLAUSE_END = re.compile(r"[,;:—]\s|[，；：]")
_OPENERS = "\"'([“‘「『（【〔《〈"
_NON_SPACE = re.compile(r"\S")
# Chinese, Japanese and Korean characters: each is about a word, so it counts as two
# characters against the length thresholds (tuned on English, about five letters a word).
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Abbreviations after which a sentence never ends: titles before a name, and introducers.
_NEVER_END = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "mt", "vs", "e.g", "i.e", "cf", "approx", "dept"]
)
# Abbreviations that may end a sentence ("at 5 p.m." / "at 5 p.m. yesterday"): it ends there
# only if the next word starts like a sentence, i.e. not in lower case or with a digit.
_MAY_END = frozenset(["etc", "jr", "sr", "inc", "ltd", "co", "corp", "no", "fig", "est"])
# Dotted abbreviations of short letter groups: U.S., U.K., a.m., p.m., Ph.D. (not 3.14 or
# example.com, which are not letters or not short).
_DOTTED = re.compile(r"(?:[a-z]{1,2}\.)+[a-z]{1,2}")


class SentenceSplitter:
    """Feed text deltas with `push`; get complete pieces back; `flush` returns the rest.

    Sentences end at . ! ? … followed by whitespace and at Chinese/Japanese 。！？; not after a
    title ("Dr."), "e.g."/"i.e." or an initial, nor after an abbreviation that may end one
    ("p.m.", "U.S.", "etc.") when the next word starts in lower case or with a digit.

    A long first sentence is cut at a clause boundary (comma, semicolon, colon, dash, or the
    full-width ，；：) once it has ``first_clause_min_chars`` characters, so the first audio
    comes sooner. Lengths count a CJK character as two: it is about a word.
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
        # Where the next search for a sentence end starts: everything before it is decided, so
        # a long sentence is not scanned again for every delta.
        self._scanned = 0

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        out: list[str] = []
        while piece := self._next_piece():
            out.append(piece)
        return out

    def flush(self) -> list[str]:
        rest = self._buffer.strip()
        self._buffer = ""
        self._scanned = 0
        if rest:
            self._emitted += 1
            return [rest]
        return []

    def _next_piece(self) -> str | None:
        buffer = self._buffer
        search_from = self._scanned
        waiting = None
        while match := _SENTENCE_END.search(buffer, search_from):
            end = match.end()
            search_from = end
            candidate = buffer[:end].strip()
            if _length(candidate) < self.min_chars:
                continue
            if buffer[match.start()] == ".":
                kind = _abbreviation(buffer[: match.start()])
                if kind == "never":
                    continue
                if kind == "maybe":
                    following = _NON_SPACE.search(buffer, end)
                    if following is None:
                        waiting = match.start()  # the next word decides; it has not arrived
                        break
                    first = following.group()
                    if first.islower() or first.isdigit():
                        continue
            return self._cut(end, candidate)
        if waiting is not None:
            self._scanned = waiting
        else:
            self._scanned = max(search_from, len(buffer.rstrip(_END_RUN)))
        if self._emitted == 0 and self.first_piece_words:
            words = buffer.split(" ")
            # complete words only: the last item may still be growing
            if len([w for w in words[:-1] if w.strip()]) >= self.first_piece_words:
                cut = len(" ".join(words[: self.first_piece_words + (buffer[:1] == " ")]))
                piece = buffer[:cut].strip()
                if len(piece) >= self.min_chars:
                    return self._cut(cut, piece)
        if self._emitted == 0 and _length(buffer) >= self.first_clause_min_chars:
            last = None
            for match in _CLAUSE_END.finditer(buffer):
                if match.end() >= self.min_chars:
                    last = match
            if last is not None:
                return self._cut(last.end(), buffer[: last.end()].strip())
        return None

    def _cut(self, end: int, piece: str) -> str:
        self._buffer = self._buffer[end:]
        self._scanned = 0
        self._emitted += 1
        return piece


def _length(text: str) -> int:
    """Characters, with each CJK character counted twice (see `_CJK`)."""
    if text.isascii():
        return len(text)
    return len(text) + len(_CJK.findall(text))


def _abbreviation(text: str) -> str | None:
    """Whether `text`, which a "." follows, ends with an abbreviation: "never" or "maybe" a
    sentence end there, or None (not an abbreviation)."""
    words = text.rsplit(None, 1)
    if not words or text[-1].isspace():
        return None
    word = words[-1].lstrip(_OPENERS).lower()
    if word in _NEVER_END or (len(word) == 1 and word.isalpha()):
        return "never"  # single initials too: "J. R. R. Tolkien"
    if word in _MAY_END or _DOTTED.fullmatch(word):
        return "maybe"
    return None


def split_sentences(text: str) -> list[str]:
    """Split a whole text into the pieces `SentenceSplitter` would produce."""
    splitter = SentenceSplitter()
    return splitter.push(text) + splitter.flush()
