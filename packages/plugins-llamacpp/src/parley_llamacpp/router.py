"""Which tool, if any, the user's words call: decided by the nearest examples, not the model.

A 135M model's first token is a poor judge of whether a question needs a tool. Over 40
weather questions and 60 others, none of them in its prompt (`bench/tool_routing.py`),
SmolLM2-135M called the weather tool with the right place for 30 of the 40 ("Do I need an
umbrella in Dublin?" was answered without it) and called it for 14 of the others ("Where is
Berlin?" got the weather in Berlin).

The router compares the question with each tool's example questions and with questions that
need no tool, by the mean of the model's own input embeddings of their tokens (read from the
GGUF; a tenth of a millisecond, no forward pass). Nearest two of each kind decide. With it,
38 of the 40 and 9 of the 60 got a call. Mean-pooled hidden states of a second instance of
the model did no better (39 and 9) and cost 60-170 ms a turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

Vector = np.ndarray[Any, np.dtype[np.float32]]

NEAREST = 2
"""How many of each kind's nearest examples are averaged (one is too easily a fluke)."""

# Questions that need no tool, besides the prompt's own plain examples. Places and topics a
# tool question has too, so that a place name alone does not pull a question to the tool.
PLAIN_QUESTIONS: tuple[str, ...] = (
    "Where is Lima?",
    "Tell me about Oslo.",
    "What is the population of Boston?",
    "How do I get to Tokyo?",
    "What's your favourite colour?",
    "Tell me a story.",
    "What is the speed of light?",
    "Thanks!",
    "What is photosynthesis?",
    "What time is it?",
)


class ExampleRouter:
    """Routes a question to the tool whose example questions are nearest, or to none.

    ``examples`` maps each tool's name to its example questions; ``plain`` are questions that
    need no tool. A tool wins when its nearest examples are more similar than the nearest
    plain ones (mean cosine similarity of the `NEAREST` best of each).
    """

    def __init__(
        self,
        embed: Callable[[str], Vector],
        examples: Mapping[str, Sequence[str]],
        plain: Sequence[str],
    ) -> None:
        if not plain:
            raise ValueError("the router needs plain examples to compare tools against")
        self._embed = embed
        self._examples = {name: tuple(questions) for name, questions in examples.items()}
        self._plain = tuple(plain)
        self._vectors: dict[str, Vector] = {}

    def warm(self) -> None:
        """Embed every example now rather than at the first turn."""
        for questions in (*self._examples.values(), self._plain):
            for question in questions:
                self._vector(question)

    def route(self, text: str, *, plain_allowed: bool = True) -> str | None:
        """The name of the tool ``text`` calls, or None for a plain answer."""
        if not self._examples:
            return None
        query = self._embed(text)
        scores = {name: self._score(query, qs) for name, qs in self._examples.items() if qs}
        if not scores:
            return None
        best = max(scores, key=scores.__getitem__)
        if plain_allowed and scores[best] <= self._score(query, self._plain):
            return None
        return best

    def _score(self, query: Vector, questions: Sequence[str]) -> float:
        similarities = sorted((float(query @ self._vector(q)) for q in questions), reverse=True)
        return float(np.mean(similarities[:NEAREST]))

    def _vector(self, question: str) -> Vector:
        vector = self._vectors.get(question)
        if vector is None:
            vector = self._vectors[question] = self._embed(question)
        return vector


class TokenEmbeddings:
    """The model's input embedding of each token (``token_embd.weight``), read from its GGUF.

    Reading the file's index takes seconds (gguf parses the whole vocabulary); the rows stay
    in the memory-mapped file and are dequantized a few at a time.
    """

    def __init__(self, model_path: Path) -> None:
        reader = gguf.GGUFReader(model_path)
        tensor = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
        if tensor is None:
            raise ValueError(f"{model_path} has no token_embd.weight: route_tools cannot use it")
        self._rows = tensor.data
        self._type = tensor.tensor_type
        self._width = int(tensor.shape[0])  # GGUF lists a matrix's shape innermost first

    def mean(self, tokens: Sequence[int]) -> Vector:
        """The mean of ``tokens``' embeddings, at unit length (zero for no tokens)."""
        if not tokens:
            return np.zeros(self._width, dtype=np.float32)
        rows = gguf.quants.dequantize(self._rows[list(tokens)], self._type)
        vector: Vector = np.asarray(rows, dtype=np.float32).reshape(len(tokens), -1).mean(axis=0)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector
