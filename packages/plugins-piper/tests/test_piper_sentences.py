from __future__ import annotations

from parley_piper.sentences import sentences, speech_pieces


def test_splits_at_sentence_ends_and_line_breaks() -> None:
    text = 'Hello there. How are you? I said "fine." Great!\nNext line'
    assert sentences(text) == [
        "Hello there.",
        "How are you?",
        'I said "fine."',
        "Great!",
        "Next line",
    ]


def test_keeps_abbreviations_inside_a_sentence() -> None:
    assert sentences("Dr. Smith met Mrs. Jones, e.g. at noon. Then left.") == [
        "Dr. Smith met Mrs. Jones, e.g. at noon.",
        "Then left.",
    ]


def test_long_first_sentence_is_cut_into_clauses_of_useful_length() -> None:
    text = (
        "Well, when I went to the market this morning, I found that the apples were "
        "expensive, so I bought pears instead. Then, I went home."
    )
    assert speech_pieces(text) == [
        "Well, when I went to the market this morning,",
        "I found that the apples were expensive,",
        "so I bought pears instead.",
        "Then, I went home.",  # only the first sentence is cut
    ]


def test_short_first_sentence_and_empty_text_stay_whole() -> None:
    assert speech_pieces("Yes, of course. Anything else?") == ["Yes, of course.", "Anything else?"]
    assert speech_pieces("") == [] and speech_pieces(" \n ") == []
    assert speech_pieces("no punctuation at all") == ["no punctuation at all"]
