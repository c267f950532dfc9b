"""A process the Runner owns freezes its startup heap; an app embedded elsewhere does not."""

from __future__ import annotations

import gc

from parley_server import Runner
from parley_server_testkit import fake_launcher


async def test_a_process_the_runner_owns_freezes_its_startup_heap() -> None:
    runner = Runner(fake_launcher())
    runner.worker_app()  # as in a uvicorn worker: this process serves only the runner
    assert gc.get_freeze_count() == 0
    try:
        async with runner.lifespan():
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_an_app_embedded_in_another_program_leaves_its_collector_alone() -> None:
    runner = Runner(fake_launcher())
    async with runner.lifespan():
        assert gc.get_freeze_count() == 0
