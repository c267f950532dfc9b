"""Heavy dependencies loaded on first use, so ``import parley`` stays fast.

``from parley._lazy import np`` gives numpy as a module that imports itself the first time an
attribute is read (stdlib `importlib.util.LazyLoader`). Anything that touches audio loads it;
listing plugins or building the CLI does not.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = ["lazy_module", "np"]


def lazy_module(name: str) -> ModuleType:
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"{name} is required: pip install {name}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_module("numpy")
