"""What the user heard of an interrupted reply: cut by played audio, word by word."""

from __future__ import annotations

from parley.heard import TYPICAL_SECONDS_PER_CHARACTER, SpokenPiece, heard_text

PER_CHAR = 0.05  # seconds of audio per character, as `FakeTTS` makes


def piece(text: str, complete: bool = True, seconds: float | None = None) -> SpokenPiece:
    return SpokenPiece(text, len(text) * PER_CHAR if seconds is None else seconds, complete)


def test_a_word_counts_once_its_end_was_played() -> None:
    text = "a extraordinarily long word"  # ends: a@1, extraordinarily@17, long@22, word@27
    pieces = [piece(text)]
    assert heard_text(pieces, 0.5 * PER_CHAR) == ""
    assert heard_text(pieces, 1 * PER_CHAR) == "a"
    # cut mid-word in the long word: only "a" (the long word was not finished)
    assert heard_text(pieces, 10 * PER_CHAR) == "a"
    assert heard_text(pieces, 17 * PER_CHAR) == "a extraordinarily"
    # cut mid-word in a short word right after
    assert heard_text(pieces, 20 * PER_CHAR) == "a extraordinarily"
    assert heard_text(pieces, 27 * PER_CHAR) == text


def test_word_count_fractions_would_get_these_wrong() -> None:
    # 1.54 s of 3.65 s played (30.8 of 73 characters): a word-count cut keeps
    # int(8 * 0.42) = 3 words, one too few; the words that ended within 1.54 s are
    # "Unquestionably it is a" (22 characters = 1.1 s)
    text = "Unquestionably it is a magnificent, breathtaking, extraordinary panorama."
    assert heard_text([piece(text)], 1.54) == "Unquestionably it is a"
    # short words first, then a long one cut: a word-count cut would keep int(9 * 0.37) = 3,
    # one too few
    text = "I am so very incomprehensibly tired of waiting around."
    assert heard_text([piece(text)], 1.0) == "I am so very"


def test_earlier_pieces_are_whole_and_the_cut_falls_in_a_later_one() -> None:
    pieces = [piece("Hello there."), piece("How are you today?")]
    played = len("Hello there.") * PER_CHAR + len("How are") * PER_CHAR
    assert heard_text(pieces, played) == "Hello there. How are"


def test_a_piece_still_arriving_is_measured_at_the_replys_own_rate() -> None:
    # The second piece had only 0.5 s of its 1.0 s synthesized when the reply stopped at 0.8 s
    # into it; measuring against the 0.5 s received would call it fully heard.
    first = piece("Sure thing.")
    second = SpokenPiece("abcd efgh ijkl mnop qrs", seconds=0.5, complete=False)
    played = first.seconds + 0.3  # 6 characters into the second piece
    assert heard_text([first, second], played) == "Sure thing. abcd"


def test_without_a_finished_piece_a_typical_rate_is_assumed() -> None:
    text = "one two three four five six"
    partial = SpokenPiece(text, seconds=0.2, complete=False)
    played = len("one two") * TYPICAL_SECONDS_PER_CHARACTER
    assert heard_text([partial], played) == "one two"


def test_nothing_played_nothing_heard() -> None:
    assert heard_text([piece("Hello.")], 0.0) == ""
    assert heard_text([], 3.0) == ""
