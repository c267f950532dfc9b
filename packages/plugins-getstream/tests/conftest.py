"""Put this folder on sys.path so tests can import the shared helpers (fake_stream…)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
