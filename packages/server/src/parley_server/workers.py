"""The uvicorn app factory each worker process runs (``serve --workers N``).

uvicorn starts workers from an import string, so the parent leaves the Runner's target and
log levels in ``PARLEY_SERVER_WORKER``; each worker loads the target in capture mode (see
`parley_server.targets`), gets the same Runner the user built, and serves its app.
"""

from __future__ import annotations

import json
import os
from typing import Any

from parley_server.console import configure_logging
from parley_server.loading import load_runner
from parley_server.runner import WORKER_ENV
from parley_server.targets import Target


def create_app() -> Any:
    raw = os.environ.get(WORKER_ENV)
    if not raw:
        raise RuntimeError(
            f"{WORKER_ENV} is not set: this factory is started by Runner.serve(workers=N)"
        )
    settings = json.loads(raw)
    configure_logging(
        settings.get("log_level", "INFO"),
        settings.get("http_log_level", "INFO"),
        log_level_libs=settings.get("log_level_libs", "WARNING"),
        log_format=settings.get("log_format"),
    )
    return load_runner(Target.from_dict(settings["target"])).worker_app()
