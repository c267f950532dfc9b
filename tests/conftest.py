"""Make packages' shared test helpers importable from the cross-package tests here.

Tests import with ``--import-mode=importlib``, which leaves ``sys.path`` alone, so helper
modules that live next to a package's tests (``webrtc_chromium``, ``webrtc_client``…) are
put on the path explicitly.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
HELPER_FOLDERS = ("packages/plugins-webrtc/tests", "tests")

for folder in HELPER_FOLDERS:
    path = str(_ROOT / folder)
    if path not in sys.path:
        sys.path.append(path)
