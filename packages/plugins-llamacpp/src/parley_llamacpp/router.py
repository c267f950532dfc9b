"""Which tool, if any, the user's words call: decided by the nearest examples, not the model.

A 135M model's first token is a poor judge of whether a question needs a tool. With the
demo's weather and joke tools (`bench/tool_routing.py`; none of its questions is in the
prompt), SmolLM2-135M called the weather tool with the right place for 31 of 40 weather
questions ("Do I need an umbrella in Dublin?" was answered without it), the joke tool for 6 of
9 joke requests, and a tool for 35 of 58 other questions ("Where is Berlin?" got the weather in
Berlin, "Thank you." a joke). Its sentence embeddings, the mean of its last hidden states,
place a question nearer the examples of the tool it needs; with the words only one kind of
example uses, the router gets 37 of 40, 9 of 9 and 10 of 58.

The router embeds with a second, embedding-only instance of the same GGUF on its own thread,
so a question is embedded while the generating instance evaluates the prompt. That costs a
second forward pass over the question (tens of milliseconds on one core). The mean of the
model's input (token) embeddings, which costs nothing, was tried and dropped: it sent "What
is the weather in Rome?" to a plain answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from llama_cpp import Llama

from parley_llamacpp.engine import LOAD_LOCK

Vector = np.ndarray[Any, np.dtype[np.float32]]

NEAREST = 2
"""How many of each kind's nearest examples are averaged (one is too easily a fluke)."""
WORD_BONUS = 0.02
"""Added to a kind's score for each word of the question that only that kind's examples use
("joke" only in the joke tool's, "story" only in the plain ones): the model's embeddings
barely tell "Tell me a short joke." from "Tell me a story." (0.953 against 0.953)."""
MARGIN = 0.005
"""How much nearer a tool's examples must be than the plain ones. Chosen with the demo's two
tools (`bench/tool_routing.py`, before `WORD_BONUS`): with none, 39 of 40 weather questions
and 15 of 63 other questions went to a tool ("What should I cook for dinner tonight?" got a
joke); with 0.005, 37 and 8."""

# Questions that need no tool, besides the prompt's own plain examples. Places and topics a
# tool question has too, so that a place name alone does not pull a question to the tool, and
# requests shaped like a tool's ("Tell me a ...") for things no tool gives.
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
    need no tool. A kind's score is the mean cosine similarity of its `NEAREST` examples,
    plus `WORD_BONUS` for each of the question's words that only its examples use. A tool wins
    when its score beats the plain one by `MARGIN`.
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
        kinds: dict[str | None, tuple[str, ...]] = {None: self._plain}
        kinds.update(self._examples)
        users: dict[str, set[str | None]] = {}
        for kind, questions in kinds.items():
            for question in questions:
                for word in _words(question):
                    users.setdefault(word, set()).add(kind)
        # The words only one kind's examples use, and that kind (None: plain).
        self._owner = {word: next(iter(k)) for word, k in users.items() if len(k) == 1}

    def warm(self) -> None:
        """Embed every example now (tens of milliseconds each) rather than at the first turn."""
        for questions in (*self._examples.values(), self._plain):
            for question in questions:
                self._vector(question)

    def route(self, text: str, *, plain_allowed: bool = True) -> str | None:
        """The name of the tool ``text`` calls, or None for a plain answer."""
        if not self._examples:
            return None
        query = self._embed(text)
        owners = [self._owner[word] for word in _words(text) if word in self._owner]
        scores = {
            name: self._score(query, qs) + WORD_BONUS * owners.count(name)
            for name, qs in self._examples.items()
            if qs
        }
        if not scores:
            return None
        best = max(scores, key=scores.__getitem__)
        plain = self._score(query, self._plain) + WORD_BONUS * owners.count(None)
        if plain_allowed and scores[best] <= plain + MARGIN:
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


def _words(text: str) -> set[str]:
    """A question's words for matching: lowercase, longer than two letters, a plural's "s"
    dropped ("jokes" is "joke")."""
    return {word.removesuffix("s") for word in re.findall(r"[a-z]+", text.lower()) if len(word) > 2}


class Embedder:
    """Sentence embeddings from a GGUF, on a thread of its own (unit length, mean pooled)."""

    def __init__(self, model_path: Path, *, n_threads: int) -> None:
        self._model_path = model_path
        self._n_threads = n_threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-embed")
        self._llama: Llama | None = None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` on the embedding thread (where `embed` must be called)."""
        return self._executor.submit(fn, *args, **kwargs)

    def load(self) -> Llama:
        """Load the model (on the embedding thread). While llama.cpp loads quietly it points
        the process's stdout and stderr at /dev/null, so load before printing anything."""
        if self._llama is None:
            with LOAD_LOCK:
                self._llama = self._load()
        return self._llama

    def embed(self, text: str) -> Vector:
        # One vector per token (the model's own pooling: none); their mean is the sentence's.
        tokens = np.asarray(self.load().embed(text, truncate=True), dtype=np.float32)
        vector = tokens.mean(axis=0) if tokens.ndim == 2 else tokens
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def _load(self) -> Llama:
        return Llama(
            model_path=str(self._model_path),
            embedding=True,
            n_ctx=256,
            n_batch=256,
            n_ubatch=256,
            n_threads=self._n_threads,
            n_threads_batch=self._n_threads,
            verbose=False,
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llama is not None:
            self._llama.close()
            self._llama = None
