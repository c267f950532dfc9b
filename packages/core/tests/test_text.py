from __future__ import annotations

import pytest
from parley.text import SentenceSplitter, split_sentences


def stream(text: str, splitter: SentenceSplitter) -> list[str]:
    out: list[str] = []
    for word in text.split(" "):
        out += splitter.push(word + " ")
    return out + splitter.flush()


def test_sentences_abbreviations_and_numbers_stay_whole() -> None:
    text = "Hello there. How are you today? Dr. Smith said 3.14 is pi. Ok"
    assert split_sentences(text) == [
        "Hello there.",
        "How are you today?",
        "Dr. Smith said 3.14 is pi.",
        "Ok",
    ]


def test_long_first_sentence_is_cut_at_a_clause() -> None:
    text = (
        "Well, the weather in Paris today is going to be quite sunny with a light breeze, "
        "and the temperature will be around twenty degrees. Enjoy!"
    )
    pieces = stream(text, SentenceSplitter())
    assert pieces[0].endswith("breeze,")
    assert " ".join(pieces) == text


@pytest.mark.parametrize("words", [3, 5])
def test_first_piece_words_cuts_only_the_first_piece(words: int) -> None:
    text = "It is sunny and twenty two degrees in London today. Enjoy your day outside!"
    pieces = stream(text, SentenceSplitter(first_piece_words=words))
    assert pieces[0] == " ".join(text.split()[:words])
    assert pieces[-1] == "Enjoy your day outside!"
    assert " ".join(pieces) == text


def test_first_piece_words_yields_to_an_earlier_sentence_end() -> None:
    pieces = stream("Hi there. It is sunny and warm.", SentenceSplitter(first_piece_words=5))
    assert pieces == ["Hi there.", "It is sunny and warm."]


def test_nothing_is_lost_for_any_delta_boundaries() -> None:
    text = "One two three. Four, five six seven eight nine ten eleven twelve! Thirteen?"
    for size in (1, 2, 3, 7):
        splitter = SentenceSplitter(first_piece_words=4)
        pieces: list[str] = []
        for i in range(0, len(text), size):
            pieces += splitter.push(text[i : i + size])
        pieces += splitter.flush()
        assert " ".join(pieces) == text
