from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an abbreviation that may end a sentence ends it only before a sentence start
        (
            "I called at 5 p.m. yesterday and again today. Nobody answered.",
            ["I called at 5 p.m. yesterday and again today.", "Nobody answered."],
        ),
        ("We close at 5 p.m. Come back tomorrow.", ["We close at 5 p.m.", "Come back tomorrow."]),
        (
            "The U.S. economy grew last year. Prices rose.",
            ["The U.S. economy grew last year.", "Prices rose."],
        ),
        (
            "She moved to the U.S. Then she found work.",
            ["She moved to the U.S.", "Then she found work."],
        ),
        (
            "Bring fruit, e.g. Apples or pears. Thanks!",
            ["Bring fruit, e.g. Apples or pears.", "Thanks!"],
        ),
        ("Ask Dr. Smith about it. He knows.", ["Ask Dr. Smith about it.", "He knows."]),
        ("Pens, paper, etc. are in the drawer.", ["Pens, paper, etc. are in the drawer."]),
        ("Meet me at No. 5 Main Street.", ["Meet me at No. 5 Main Street."]),
        ("He has a Ph.D. in physics. Really.", ["He has a Ph.D. in physics.", "Really."]),
        ("Call (Dr. Who) now. It is late.", ["Call (Dr. Who) now.", "It is late."]),
        # not abbreviations: split as before
        ("Visit example.com. It has more.", ["Visit example.com.", "It has more."]),
        ("The value is 3.14. Remember it.", ["The value is 3.14.", "Remember it."]),
    ],
)
def test_abbreviations(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    # streamed word by word, and character by character, the pieces are the same
    assert stream(text, SentenceSplitter()) == expected
    splitter = SentenceSplitter()
    pieces = [piece for char in text for piece in splitter.push(char)] + splitter.flush()
    assert pieces == expected


def test_a_may_end_abbreviation_waits_for_the_next_word() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("We close at 5 p.m. ") == []  # "yesterday" or "Come"?
    assert splitter.push("Come") == ["We close at 5 p.m."]
    assert splitter.flush() == ["Come"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "今天天气很好。我们去公园吧！你想去吗？好的",
            ["今天天气很好。", "我们去公园吧！", "你想去吗？", "好的"],
        ),
        (
            "東京は今日晴れです。明日は雨が降るでしょう。",
            ["東京は今日晴れです。", "明日は雨が降るでしょう。"],
        ),
        # a closing quote stays with its sentence
        ("他说：“今天天气很好。”然后他走了。", ["他说：“今天天气很好。”", "然后他走了。"]),
        ("「こんにちは。」彼は笑った。", ["「こんにちは。」", "彼は笑った。"]),
        # mixed with English, and with a space after the full stop
        ("Hello there. 你好，世界。 再见。", ["Hello there.", "你好，世界。", "再见。"]),
    ],
)
def test_chinese_and_japanese_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
    splitter = SentenceSplitter()
    pieces = [piece for char in text for piece in splitter.push(char)] + splitter.flush()
    assert pieces == expected


def test_a_long_first_chinese_sentence_is_cut_at_a_full_width_comma() -> None:
    text = (
        "今天北京的天气非常好，阳光明媚，温度大约二十五度，"
        "非常适合去公园散步或者骑自行车，晚上可能会有点凉。"
    )
    splitter = SentenceSplitter()
    pieces = [piece for char in text for piece in splitter.push(char)] + splitter.flush()
    assert len(pieces) == 2
    assert pieces[0].endswith("，")
    assert "".join(pieces) == text


def test_short_chinese_sentences_count_as_words_not_letters() -> None:
    # seven characters are about five words: a sentence of its own, not merged like "Hi."
    assert split_sentences("今天天气很好。明天见。") == ["今天天气很好。", "明天见。"]


# Abbreviations, sentence ends and CJK punctuation, joined by spaces in any order.
PIECES = "p.m. U.S. e.g. Dr. No. etc. Hi. ok Yes! 3.14 why? x A. ... — "
PIECES += "你好。 天气， 「好。」 ” 再见！"


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from([*PIECES.split(), "\n"]), max_size=30),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
)
def test_no_text_is_lost_or_reordered(words: list[str], sizes: list[int]) -> None:
    text = " ".join(words)
    splitter = SentenceSplitter(first_piece_words=3)
    pieces: list[str] = []
    at = 0
    for i in range(len(text)):
        if at >= len(text):
            break
        size = sizes[i % len(sizes)]
        pieces += splitter.push(text[at : at + size])
        at += size
    pieces += splitter.flush()
    assert all(piece and piece == piece.strip() for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())

    # Without the first-piece cuts (which depend on timing) sentence ends do not depend on how
    # the text is cut into deltas: streamed pieces are those of the whole text.
    whole = SentenceSplitter(first_clause_min_chars=10**9)
    expected = whole.push(text) + whole.flush()
    streamed = SentenceSplitter(first_clause_min_chars=10**9)
    pieces, at = [], 0
    for size in sizes * len(text):
        if at >= len(text):
            break
        pieces += streamed.push(text[at : at + size])
        at += size
    assert pieces + streamed.flush() == expected
