"""Names a plugin package exports without importing them, so its entry module stays light.

```python
# parley_acme/__init__.py
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see
    from parley_acme.tts import AcmeTTS

    TTS = AcmeTTS

__getattr__, __dir__ = lazy_exports(
    __name__, {"TTS": "parley_acme.tts:AcmeTTS", "AcmeTTS": "parley_acme.tts:AcmeTTS"}
)
```

``from parley_acme import TTS`` and ``from parley.plugins import acme; acme.TTS()`` import
``parley_acme.tts`` then, the first time the name is read.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    module: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``module`` (its ``__name__``) that load
    each of ``exports`` (name -> ``"package.module:attribute"``) on first use and keep it."""
    for name, target in exports.items():
        if not target.partition(":")[2]:
            raise ValueError(f"{module}.{name}: {target!r} is not 'package.module:attribute'")
    targets = dict(exports)

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, _, attribute = target.partition(":")
        value = importlib.import_module(where)
        for part in attribute.split("."):
            value = getattr(value, part)
        vars(sys.modules[module])[name] = value  # later reads skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | set(targets))

    return __getattr__, __dir__
