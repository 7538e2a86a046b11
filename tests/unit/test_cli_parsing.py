"""The ``es`` command line: its version, one subcommand per process, and bad arguments named
before anything starts."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from es_cli.main import main
from tests.cli_run import es


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == version("embedding-studio")


def test_every_process_and_operation_has_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    said = capsys.readouterr().out
    for command in (
        "server",
        "worker",
        "beat",
        "triton",
        "migrate",
        "status",
        "tasks",
        "collections",
        "up",
    ):
        assert command in said


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["tasks"], "the following arguments are required: action"),
        (["tasks", "watch"], "the following arguments are required: task_id"),
        (["tasks", "list", "--status", "sleeping"], "invalid choice: 'sleeping'"),
        (["collections", "switch"], "the following arguments are required: collection_id"),
        (["worker"], "the following arguments are required: --queues"),
        (["worker", "--queues", "upsertion", "--pool", "eventlet"], "invalid choice"),
        (["status", "--timeout", "soon"], "invalid float value"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_arguments_are_named(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_a_worker_for_an_unknown_group_stops_before_celery_starts() -> None:
    code, said = es("worker", "--queues", "upsertion,nope")
    assert code == 2
    assert said.startswith("es worker: unknown queue or queue group 'nope'")
    assert "groups: upsertion, bulk, improvement, fine_tuning, deployment" in said
