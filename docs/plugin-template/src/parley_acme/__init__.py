"""The entry module of the ``acme`` plugin: light, so listing plugins stays fast.

It declares what the plugin offers by import path; ``parley_acme.tts`` (and whatever SDK it
needs) is imported only when a part is built or a class below is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins import Registrar, hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see
    from parley_acme.tts import AcmeTTS

    TTS = AcmeTTS

PARLEY_API = 1  # the plugin API major version this plugin was built for

__all__ = ["PARLEY_API", "TTS", "AcmeTTS", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "tts",  # the kind
        "acme",  # the name spec strings use: tts="acme?pitch=330"
        "parley_acme.tts:AcmeTTS",  # the factory, imported when the part is built
        # Only facts the TTS contract has no field for. Sample rate, streaming, channels and
        # languages are declared once, on AcmeTTS.capabilities, where the engine reads them.
        capabilities={"offline": True},
        description="A tone per word (the plugin template)",
        requires=["numpy"],  # import names: checked by `parley plugins`, never imported there
    )
    register.preset("acme-low", "tts", "acme?pitch=220")  # a name that stands for a spec


__getattr__, __dir__ = lazy_exports(
    __name__, {"TTS": "parley_acme.tts:AcmeTTS", "AcmeTTS": "parley_acme.tts:AcmeTTS"}
)
