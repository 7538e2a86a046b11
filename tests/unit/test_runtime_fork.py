"""A prefork worker's children inherit the parent's memory: each must run its tasks on a loop
(and pool, and caches) of its own, never on the parent's."""

from __future__ import annotations

import asyncio
import json
import os

from es_workers import runtime


async def _loop_id() -> int:
    await asyncio.sleep(0)
    return id(asyncio.get_running_loop())


def test_a_forked_child_gets_its_own_loop_and_no_inherited_context() -> None:
    parent_loop = runtime.run(_loop_id())
    assert runtime.run(_loop_id()) == parent_loop  # one long-lived loop per process
    parent_runner = runtime._runner
    # As if the parent had built its context (pool, encoders) before forking.
    runtime._context = object()  # type: ignore[assignment]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup
        try:
            child_loop = runtime.run(_loop_id())
            seen = {
                "loop_is_parents": child_loop == parent_loop,
                "runner_is_parents": runtime._runner is parent_runner,
                "context_cleared": runtime._context is None,
                "same_loop_again": runtime.run(_loop_id()) == child_loop,
            }
            os.write(write, json.dumps(seen).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        seen = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    runtime._context = None
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == {
        "loop_is_parents": False,
        "runner_is_parents": False,
        "context_cleared": True,
        "same_loop_again": True,
    }
    # The parent's own loop is untouched by the child's.
    assert runtime.run(_loop_id()) == parent_loop
