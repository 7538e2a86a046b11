"""scripts/check_deploy.py finds what is wrong: each check on files made wrong on purpose, and
its parsing of commands, kustomizations and Dockerfiles."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_deploy_files import checks

Cmd = checks.EsCommand


@pytest.fixture()
def compose() -> dict[str, Any]:
    return copy.deepcopy(checks.load_compose())


@pytest.fixture()
def objects() -> list[dict[str, Any]]:
    return checks.render_kustomization()  # type: ignore[no-any-return]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


# --- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "subcommand"),
    [
        (("worker", "--queues", "reindex"), ("worker",)),
        (("migrate", "--status"), ("migrate",)),
        (("tasks", "list", "--state=failed"), ("tasks", "list")),
        (("server",), ("server",)),
        (("--version",), ()),
        ((), ()),
    ],
)
def test_subcommand_is_the_words_before_the_first_option(
    args: tuple[str, ...], subcommand: tuple[str, ...]
) -> None:
    assert Cmd("x", args).subcommand == subcommand


def test_commands_in_shell_form_and_list_form() -> None:
    assert checks.as_argv("worker --queues 'a,b' --pool solo") == [
        "worker",
        "--queues",
        "a,b",
        "--pool",
        "solo",
    ]
    assert checks.as_argv(["beat", 1]) == ["beat", "1"]
    assert checks.as_argv(None) == []
    with pytest.raises(ValueError, match="string or a list"):
        checks.as_argv({"not": "a command"})


def test_option_values_in_both_spellings() -> None:
    args = ["worker", "--queues=a,b", "--concurrency", "2", "--concurrency", "3"]
    assert checks.option_value(args, "--queues") == "a,b"
    assert checks.option_value(args, "--concurrency") == "3"
    assert checks.option_value(args, "--pool") is None
    assert checks.option_value(["worker", "--pool"], "--pool") is None
    assert checks.options_of(Cmd("x", tuple(args))) == {"--queues", "--concurrency"}


def test_compose_commands_skip_other_images_and_entrypoints(compose: dict[str, Any]) -> None:
    services = compose["services"]
    services["tool"] = {"image": "registry.example/embedding-studio:1", "command": "keys list"}
    services["shell"] = {"image": "embedding-studio", "entrypoint": "sh -c", "command": "true"}
    found = {c.where: c.args for c in checks.compose_commands(compose)}
    assert found["compose:tool"] == ("keys", "list")
    assert "compose:shell" not in found
    assert "compose:redis" not in found


def test_k8s_commands_skip_containers_with_their_own_command(
    objects: list[dict[str, Any]],
) -> None:
    found = {c.where: c.args for c in checks.k8s_commands(objects)}
    assert found["k8s:Job/es-migrate/migrate"] == ("migrate",)
    assert not any(where.startswith("k8s:Deployment/mlflow") for where in found)


# --- worker groups ---------------------------------------------------------------------------


def _workers(*queue_lists: str, fine_tuning: tuple[str, ...] = ("--pool", "solo")) -> list[Any]:
    commands = [Cmd(f"w{i}", ("worker", "--queues", q)) for i, q in enumerate(queue_lists)]
    commands.append(
        Cmd("ft", ("worker", "--queues", "fine_tuning", *fine_tuning, "--concurrency", "1"))
    )
    return commands


ALL = ("upsertion,sweeper", "reindex", "improvement", "deployment")
QUEUES = ["upsertion", "sweeper", "reindex", "improvement", "fine_tuning", "deployment"]


def test_the_five_groups_once_each_pass() -> None:
    assert checks.worker_group_problems(_workers(*ALL), QUEUES, "here") == []


def test_a_group_run_twice_or_never_is_found() -> None:
    problems = checks.worker_group_problems(_workers(*ALL, "reindex")[1:], QUEUES, "here")
    assert "here: queue group bulk runs 2 times: w1, w4" in problems
    assert "here: queue group upsertion runs 0 times" in problems


def test_queues_that_are_no_group_are_found() -> None:
    problems = checks.worker_group_problems(
        [*_workers(*ALL), Cmd("odd", ("worker", "--queues", "upsertion"))], QUEUES, "here"
    )
    assert len(problems) == 1 and problems[0].startswith("odd: --queues upsertion is no queue")


def test_a_worker_without_queues_is_found() -> None:
    problems = checks.worker_group_problems(
        [*_workers(*ALL), Cmd("bare", ("worker", "--concurrency", "2"))], QUEUES, "here"
    )
    assert problems == ["bare: `es worker` without --queues"]


def test_fine_tuning_must_be_solo() -> None:
    problems = checks.worker_group_problems(
        _workers(*ALL, fine_tuning=("--pool", "prefork")), QUEUES, "here"
    )
    assert problems == ["ft: the fine_tuning group needs --pool solo"]


def test_a_queue_the_workers_know_but_no_group_covers_is_found() -> None:
    problems = checks.worker_group_problems(_workers(*ALL), [*QUEUES, "new_work"], "here")
    assert problems == ["here: queue new_work is in no queue group"]


# --- compose ---------------------------------------------------------------------------------


def test_depends_on_a_missing_service_is_found(compose: dict[str, Any]) -> None:
    compose["services"]["server"]["depends_on"]["postgres"] = {"condition": "service_healthy"}
    compose["services"]["beat"]["depends_on"] = ["beat"]
    problems = checks.compose_problems(compose)
    assert "compose:server: depends_on names postgres, which is no service" in problems
    assert "compose:beat: depends on itself" in problems


def test_a_host_port_published_twice_is_found(compose: dict[str, Any]) -> None:
    compose["services"]["worker-bulk"]["ports"] = ["50051:50051"]
    compose["services"]["beat"]["ports"] = [
        {"target": 80, "published": 5000, "host_ip": "127.0.0.1"}
    ]
    compose["services"]["triton"]["ports"] = ["8000"]  # no host side: docker picks one
    problems = checks.compose_problems(compose)
    assert sorted(p for p in problems if "host port" in p) == [
        "compose:beat: host port 127.0.0.1:5000 clashes with mlflow's",
        "compose:worker-bulk: host port 50051 clashes with server's",
    ]


def test_the_same_port_on_two_addresses_is_no_clash(compose: dict[str, Any]) -> None:
    compose["services"]["beat"]["ports"] = ["10.0.0.5:5000:5000", "127.0.0.1:5001:80"]
    assert checks.compose_problems(compose) == []


def test_service_without_image_or_build_and_bad_env_are_found(compose: dict[str, Any]) -> None:
    compose["services"]["redis"].pop("image")
    compose["services"]["pgvector"]["environment"]["POSTGRES_INITDB"] = True
    compose["services"]["pgvector"]["environment"]["POSTGRES_LIST"] = ["a"]
    problems = checks.compose_problems(compose)
    assert "compose:redis: neither image nor build" in problems
    assert "compose:pgvector: environment POSTGRES_INITDB is a boolean; quote it" in problems
    assert "compose:pgvector: environment POSTGRES_LIST is a list" in problems


def test_a_process_of_ours_without_the_shared_settings_is_found(compose: dict[str, Any]) -> None:
    compose["services"]["beat"]["environment"] = {"ES_AUTH": "required"}
    problems = checks.compose_problems(compose)
    [problem] = [p for p in problems if p.startswith("compose:beat")]
    assert "lacks the shared settings" in problem and "ES_POSTGRES_DSN" in problem


def test_dclint_reports_what_the_compose_schema_refuses(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text('services:\n  a:\n    image: "x:1"\n    bogus: 1\n')
    problems = checks.dclint_problems(path)
    assert any("invalid-schema" in p and "/services/a" in p for p in problems)
    # A port published on every interface of the host is refused too.
    path.write_text('services:\n  a:\n    image: "x:1"\n    ports:\n      - "8080:80"\n')
    problems = checks.dclint_problems(path)
    assert any("no-unbound-port-interfaces" in p for p in problems)


def test_compose_anchors_resolve_and_a_missing_alias_fails(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  a:\n    image: x\n    environment: *nowhere\n")
    with pytest.raises(yaml.YAMLError):
        checks.load_compose(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: x\n")
    with pytest.raises(ValueError, match="no services"):
        checks.load_compose(empty)


# --- kustomize and Kubernetes ----------------------------------------------------------------


def _kustomization(directory: Path, body: str, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(body)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - {name: c, image: "reg.example:5000/team/embedding-studio:old"}
---
apiVersion: v1
kind: Namespace
metadata: {name: ns}
"""


def test_render_applies_namespace_images_and_nested_directories(tmp_path: Path) -> None:
    _kustomization(tmp_path / "base", "resources: [pod.yaml]\n", **{"pod.yaml": POD})
    top = _kustomization(
        tmp_path / "top",
        "namespace: prod\nresources: [../base]\nimages:\n"
        "  - name: reg.example:5000/team/embedding-studio\n"
        "    newName: mine/es\n"
        "    digest: sha256:ab\n",
    )
    pod, namespace = checks.render_kustomization(top)
    assert pod["metadata"]["namespace"] == "prod"
    assert "namespace" not in namespace["metadata"]
    assert pod["spec"]["containers"][0]["image"] == "mine/es@sha256:ab"


def test_render_refuses_fields_it_would_ignore(tmp_path: Path) -> None:
    top = _kustomization(tmp_path, "resources: []\ncommonLabels: {a: b}\npatches: []\n")
    with pytest.raises(ValueError, match="commonLabels, patches not supported"):
        checks.render_kustomization(top)


def test_render_refuses_a_document_that_is_no_object(tmp_path: Path) -> None:
    top = _kustomization(tmp_path, "resources: [x.yaml]\n", **{"x.yaml": "- just\n- a list\n"})
    with pytest.raises(ValueError, match="no Kubernetes object"):
        checks.render_kustomization(top)


def test_schema_errors_are_found(objects: list[dict[str, Any]]) -> None:
    server = _named(objects, "Deployment", "server")
    server["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    hpa = _named(objects, "HorizontalPodAutoscaler", "server")
    hpa["spec"]["minReplicas"] = "two"
    problems = checks.schema_problems([server, hpa], versions=["1.37.0"])
    assert len(problems) == 2
    assert "'livenesProbe' was unexpected" in problems[0]
    assert problems[1].startswith("k8s:HorizontalPodAutoscaler/server (Kubernetes 1.37.0): spec")


def test_a_kind_with_no_schema_is_found() -> None:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
    }
    assert checks.schema_problems([monitor], versions=["1.37.0"]) == [
        "k8s:ServiceMonitor/m: no Kubernetes 1.37.0 schema for this kind"
    ]


def test_missing_resources_probes_and_non_root_are_found(objects: list[dict[str, Any]]) -> None:
    server = _named(objects, "Deployment", "server")
    pod = server["spec"]["template"]["spec"]
    container = pod["containers"][0]
    del container["resources"]["limits"]["memory"]
    container["readinessProbe"] = {"tcpSocket": {"port": 50051}}
    container["securityContext"]["allowPrivilegeEscalation"] = True
    del pod["securityContext"]["runAsNonRoot"]
    triton = _named(objects, "Deployment", "triton")["spec"]["template"]["spec"]["containers"][0]
    triton["readinessProbe"]["httpGet"]["port"] = 8001
    problems = checks.k8s_problems(objects)
    assert sorted(problems) == sorted(
        [
            "k8s:Deployment/server/server: no resources.limits.memory",
            "k8s:Deployment/server/server: allowPrivilegeEscalation is not false",
            "k8s:Deployment/server: pod securityContext.runAsNonRoot is not true",
            "k8s:Deployment/server: readinessProbe is no gRPC probe on port 50051",
            "k8s:Deployment/triton: readinessProbe is not HTTP /v2/health/ready on 8000",
        ]
    )


def test_beat_scaled_or_rolling_is_found(objects: list[dict[str, Any]]) -> None:
    _named(objects, "Deployment", "beat")["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert checks.k8s_problems(objects) == [
        "k8s:Deployment/beat: must have replicas 1 and strategy Recreate"
    ]


def test_autoscaler_budget_and_selectors_are_checked(objects: list[dict[str, Any]]) -> None:
    _named(objects, "HorizontalPodAutoscaler", "server")["spec"]["scaleTargetRef"]["name"] = "api"
    _named(objects, "Deployment", "worker-upsertion")["spec"]["replicas"] = 3
    pdb = _named(objects, "PodDisruptionBudget", "server")
    pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "api"
    _named(objects, "Service", "triton")["spec"]["selector"] = {"app": "nothing"}
    _named(objects, "Deployment", "beat")["spec"]["selector"]["matchLabels"]["x"] = "y"
    assert sorted(checks.k8s_problems(objects)) == sorted(
        [
            "k8s:HorizontalPodAutoscaler/server: targets no Deployment here",
            "k8s:Deployment/worker-upsertion: sets replicas, which its autoscaler owns",
            "k8s:Deployment/server: no HorizontalPodAutoscaler",
            "k8s:Deployment/server: no PodDisruptionBudget selects its pods",
            "k8s:Service/triton: its selector matches no pod template here",
            "k8s:Deployment/beat: selector does not match its pod labels",
        ]
    )


def test_unknown_config_refs_duplicates_and_missing_namespace_are_found(
    objects: list[dict[str, Any]],
) -> None:
    objects = [o for o in objects if o["kind"] != "Secret"]
    objects.append(copy.deepcopy(_named(objects, "Service", "mlflow")))
    del _named(objects, "ConfigMap", "es-config")["metadata"]["namespace"]
    problems = checks.k8s_problems(objects)
    assert "k8s:Service/mlflow: defined twice" in problems
    assert "k8s:ConfigMap/es-config: no namespace" in problems
    assert "k8s:Deployment/beat/beat: envFrom names es-secrets, not defined here" in problems


# --- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("FROM a\nUSER es\n", 'ENTRYPOINT is not ["es"]'),
        ('FROM a\nUSER root\nENTRYPOINT ["es"]\n', "non-root USER"),
        ('FROM a AS b\nUSER 1000\nFROM c\nENTRYPOINT ["es"]\n', "non-root USER"),
        ('FROM a\nUSER 0:0\nENTRYPOINT ["es"]\n', "non-root USER"),
        ("# nothing\n", "no FROM"),
    ],
)
def test_dockerfile_structure_problems(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    [found] = checks.dockerfile_problems(path)
    assert problem in found


def test_a_dockerfile_continued_over_lines_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text('FROM a\nUSER \\\n  10001\nENTRYPOINT \\\n  [ "es" ]\n')
    assert checks.dockerfile_problems(path) == []


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM python\nRUN cd /tmp && pip install requests\n")
    problems = checks.hadolint_problems([path])
    assert any("DL3006" in p for p in problems)  # an image with no tag
    assert any("DL3003" in p for p in problems)  # cd instead of WORKDIR


def test_commands_that_do_not_resolve_or_lack_an_option_are_found() -> None:
    problems = checks.resolve_commands(
        [
            Cmd("a", ("no-such-subcommand", "--x")),
            Cmd("b", ("keys", "list", "--all")),
            Cmd("c", ("keys", "list", "--no-such-option=1")),
        ],
        python=sys.executable,
    )
    assert len(problems) == 2
    assert (
        problems[0] == "`es keys list` has no option --no-such-option (its --help does not name it)"
    )
    assert problems[1].startswith(
        "`es no-such-subcommand` (used by a) does not resolve: --help exited 2"
    )
