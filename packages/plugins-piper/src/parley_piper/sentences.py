"""Cut text into the pieces Piper synthesizes one at a time.

Piper renders a whole sentence before any of it can play, so the first piece decides the time
to first audio: sentences are split at their ends, and a long first sentence also at commas.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (and closing quotes/brackets) followed by space, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
# Words whose period does not end a sentence.
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e.", "no.", "approx."}
)


def sentences(text: str) -> list[str]:
    pieces: list[str] = []
    carry = ""
    for part in _SENTENCE_END.split(text):
        part = f"{carry} {part}".strip() if carry else part.strip()
        carry = ""
        if not part:
            continue
        last_word = part.rsplit(maxsplit=1)[-1].lower()
        if last_word in _ABBREVIATIONS:
            carry = part
            continue
        pieces.append(part)
    if carry:
        pieces.append(carry)
    return pieces


def speech_pieces(text: str, *, first_max_chars: int = 60, min_clause_chars: int = 20) -> list[str]:
    """Sentences of ``text``; a first sentence over ``first_max_chars`` is cut at commas into
    clauses of at least ``min_clause_chars`` characters."""
    pieces = sentences(text)
    if pieces and len(pieces[0]) > first_max_chars:
        pieces[:1] = _clauses(pieces[0], min_clause_chars)
    return pieces


def _clauses(sentence: str, min_chars: int) -> list[str]:
    clauses: list[str] = []
    for part in _CLAUSE_END.split(sentence):
        if clauses and len(clauses[-1]) < min_chars:
            clauses[-1] = f"{clauses[-1]} {part}"
        else:
            clauses.append(part)
    if len(clauses) > 1 and len(clauses[-1]) < min_chars:
        clauses[-2:] = [f"{clauses[-2]} {clauses[-1]}"]
    return clauses
