"""The restart policy of `es up`: backoff doubling to a cap, giving up within the window."""

from __future__ import annotations

from es_cli.restarts import RestartPolicy


def _policy() -> RestartPolicy:
    return RestartPolicy(backoff=1.0, max_backoff=5.0, max_failures=4, window=100.0)


def test_backoff_doubles_up_to_the_cap_then_it_gives_up() -> None:
    policy = _policy()
    assert [policy.failed("worker", t) for t in (0.0, 1.0, 2.0)] == [1.0, 2.0, 4.0]
    assert policy.failed("worker", 3.0) is None
    assert policy.failures("worker") == 4


def test_the_cap_holds() -> None:
    policy = RestartPolicy(backoff=1.0, max_backoff=5.0, max_failures=10, window=100.0)
    assert [policy.failed("server", float(t)) for t in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_failures_older_than_the_window_are_forgotten() -> None:
    policy = _policy()
    for t in (0.0, 1.0, 2.0):
        policy.failed("worker", t)
    # Long after: counted as the first failure again.
    assert policy.failed("worker", 500.0) == 1.0
    assert policy.failures("worker") == 1


def test_children_are_counted_apart() -> None:
    policy = _policy()
    for t in (0.0, 1.0, 2.0):
        policy.failed("worker", t)
    assert policy.failed("server", 3.0) == 1.0
    assert policy.failed("worker", 3.0) is None
