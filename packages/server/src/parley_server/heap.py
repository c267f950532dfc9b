"""The server process's startup heap, out of the garbage collector's reach.

Once the app is built and the launcher has warmed up, the process holds every module, model
and route it will need: hundreds of thousands of objects that live as long as the process. A
full collection scans them all, and while it runs no call's audio is sent: with 100 phone
calls on one process, each full collection (about every 10 s) stalled every call's frames by
80–100 ms (`bench/phone_sessions.py`). `gc.freeze` moves what is alive after startup into a
generation the collector never scans, so its pauses cover only what the sessions allocate.
Only a process the `Runner` owns (``run``, ``serve``, a worker) does this: an app embedded in
a test or another program leaves its host's collector alone.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger("parley.server")


def freeze_startup_heap() -> None:
    gc.collect()
    gc.freeze()
    logger.debug("startup heap frozen: %d objects the collector skips", gc.get_freeze_count())
