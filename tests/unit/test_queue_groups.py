"""Every queue a task kind runs on, and the sweeper's, is served by exactly one queue group,
and ``es worker`` turns groups into the Celery command line with each group's defaults."""

from __future__ import annotations

import argparse

import pytest

from es_cli.processes import add_worker_arguments, worker_argv
from es_core.tasks.model import QUEUE_FOR_KIND, TASK_KINDS
from es_workers.app import create_app
from es_workers.queues import GROUPS, QUEUES, SWEEPER_QUEUE, group_of_queue, resolve


def test_every_queue_is_served_by_exactly_one_group() -> None:
    assert set(QUEUE_FOR_KIND) == set(TASK_KINDS)
    served = [queue for group in GROUPS.values() for queue in group.queues]
    assert sorted(served) == sorted(set(QUEUE_FOR_KIND.values()) | {SWEEPER_QUEUE})
    assert sorted(served) == sorted(QUEUES)
    for kind, queue in QUEUE_FOR_KIND.items():
        assert [g.name for g in GROUPS.values() if queue in g.queues] == [
            group_of_queue(queue).name
        ], kind


def test_the_celery_app_declares_the_same_queues() -> None:
    app = create_app()
    assert sorted(q.name for q in app.conf.task_queues) == sorted(QUEUES)


def test_long_work_is_kept_apart_from_upserts() -> None:
    upserts = group_of_queue(QUEUE_FOR_KIND["upsertion"])
    for kind in (
        "fine_tuning",
        "reindex",
        "import",
        "categories_switch",
        "improvement",
        "filterable_fields",
    ):
        assert group_of_queue(QUEUE_FOR_KIND[kind]) != upserts, kind
    assert group_of_queue(QUEUE_FOR_KIND["deletion"]) == upserts
    # Index builds scan whole tables: the bulk workers run them, as they run reindexes.
    assert group_of_queue(QUEUE_FOR_KIND["filterable_fields"]) == GROUPS["bulk"]
    fine_tuning = GROUPS["fine_tuning"]
    assert (fine_tuning.pool, fine_tuning.concurrency) == ("solo", 1)
    assert (GROUPS["upsertion"].pool, GROUPS["upsertion"].concurrency) == ("prefork", 2)
    assert (GROUPS["improvement"].pool, GROUPS["improvement"].concurrency) == ("prefork", 2)


def test_resolve_mixes_groups_and_queues_without_repeats() -> None:
    assert resolve(["upsertion"]) == (["upsertion", SWEEPER_QUEUE], GROUPS["upsertion"])
    assert resolve(["bulk", "reindex", "fine_tuning"]) == (["reindex", "fine_tuning"], None)
    assert resolve(["sweeper"]) == ([SWEEPER_QUEUE], None)
    with pytest.raises(ValueError, match="unknown queue or queue group 'nope'"):
        resolve(["upsertion", "nope"])


def _worker(*argv: str) -> list[str]:
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    return worker_argv(parser.parse_args(list(argv)))


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_worker_defaults_come_from_the_group() -> None:
    argv = _worker("--queues", "upsertion")
    assert argv[argv.index("-A") + 1] == "es_workers.app:celery_app" and "worker" in argv
    assert _option(argv, "--queues") == "upsertion,sweeper"
    assert (_option(argv, "--pool"), _option(argv, "--concurrency")) == ("prefork", "2")
    assert _option(argv, "--hostname").startswith("es-upsertion-")
    argv = _worker("--queues", "fine_tuning")
    assert (_option(argv, "--pool"), _option(argv, "--concurrency")) == ("solo", "1")


def test_worker_flags_win_and_several_groups_default_to_one_at_a_time() -> None:
    argv = _worker("--queues", "improvement", "--pool", "threads", "--concurrency", "4")
    assert (_option(argv, "--pool"), _option(argv, "--concurrency")) == ("threads", "4")
    argv = _worker("--queues", "bulk, deployment")
    assert _option(argv, "--queues") == "reindex,deployment"
    assert (_option(argv, "--pool"), _option(argv, "--concurrency")) == ("solo", "1")
    assert _option(_worker("--queues", "bulk", "--hostname", "a@b"), "--hostname") == "a@b"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--queues", ""], "--queues: name at least one"),
        (["--queues", " , "], "--queues: name at least one"),
        (["--queues", "nope"], "unknown queue or queue group 'nope'"),
        (["--queues", "upsertion", "--concurrency", "0"], "--concurrency: at least 1"),
        (["--queues", "fine_tuning", "--concurrency", "2"], "solo pool runs one task"),
    ],
)
def test_bad_worker_arguments_are_named(argv: list[str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        _worker(*argv)


def test_an_unknown_pool_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _worker("--queues", "upsertion", "--pool", "gevent")
