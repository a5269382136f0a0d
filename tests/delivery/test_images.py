"""The container images, without a container engine: each Dockerfile's build stage is replayed
(its COPY lines into a fresh context, its RUN line: images/install.sh into a clean virtual
environment, from a local wheelhouse), then the entry points start from that environment."""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from voicefleet_operator.local.cluster import LocalCluster
from voicefleet_operator.local.process import CACHE, Process, free_port, port_open

from .chart import ROOT

IMAGES = ROOT / "images"
COMPONENTS = ("operator", "agent")
VENV = "/opt/voicefleet"
SETS = ("ARG", "ENV", "LABEL")
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")
Instruction = tuple[str, str]
# The interpreter this virtual environment was made from: the stand-in for the image's python.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def stages(component: str) -> list[list[Instruction]]:
    """The Dockerfile's instructions (keyword, arguments), split into build stages."""
    text = (IMAGES / f"{component}.Dockerfile").read_text().replace("\\\n", " ")
    found: list[list[Instruction]] = [[]]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            found.append([])
        found[-1].append((keyword.upper(), " ".join(rest.split())))
    return found


def args(stage: list[Instruction], keyword: str) -> list[str]:
    return [rest for key, rest in stage if key == keyword]


def clean_env(wheels: Path, bin_dir: Path) -> dict[str, str]:
    """No PYTHONPATH (the tests point it at this clone), pip offline from the wheelhouse, and
    `python` is the base interpreter, as in the python image."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL"))}
    return env | {
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
    }


@pytest.fixture(scope="module")
def wheels() -> Path:
    """Every wheel both images install, fetched once from the package index into the cache."""
    directory = CACHE / "wheels"
    requirements = [arg for c in COMPONENTS for arg in ("-r", f"images/{c}-requirements.txt")]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d",
         str(directory), "-c", "constraints.txt", *requirements, "setuptools>=77"],
        cwd=ROOT, check=True, timeout=600,
    )  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def build(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Replay a Dockerfile's build stage; the virtual environment it would put in VENV."""
    built: dict[str, Path] = {}

    def replay(component: str) -> Path:
        if component in built:
            return built[component]
        work = tmp_path_factory.mktemp(component)
        context, venv, bin_dir = work / "src", work / "venv", work / "bin"
        bin_dir.mkdir()
        (bin_dir / "python").symlink_to(BASE_PYTHON)
        stage = stages(component)[1]
        for copy in args(stage, "COPY"):
            *sources, target = shlex.split(copy)
            for source in sources:
                origin = ROOT / source
                destination = context / target
                if origin.is_dir():
                    shutil.copytree(
                        origin, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy(origin, destination / origin.name)
        (run,) = args(stage, "RUN")
        assert run == f"sh images/install.sh {component} {VENV}"
        result = subprocess.run(
            ["sh", "images/install.sh", component, str(venv)], cwd=context,
            env=clean_env(wheels, bin_dir), capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        built[component] = venv
        return venv

    return replay


def run(venv: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [str(venv / "bin" / command[0]), *command[1:]],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("component", COMPONENTS)
def test_entry_point_starts_from_a_clean_install(
    component: str, build: Callable[[str], Path]
) -> None:
    venv = build(component)
    result = run(venv, f"voicefleet-{component}", "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: voicefleet-{component}" in result.stdout
    # Each image carries its own component's stack only.
    other = {"operator": "livekit.agents", "agent": "kopf"}[component]
    assert run(venv, "python", "-c", f"import {other}").returncode != 0


def test_agent_image_has_the_silero_model_and_espeak(build: Callable[[str], Path]) -> None:
    venv = build("agent")
    load = "from livekit.plugins import silero; silero.VAD.load(); import voicefleet_agent.worker"
    result = run(venv, "python", "-c", load)
    assert result.returncode == 0, result.stderr
    assert list(venv.glob("lib/python3*/site-packages/livekit/plugins/silero/**/*.onnx"))
    final = stages("agent")[-1]
    assert any("apt-get install" in r and "espeak-ng" in r for r in args(final, "RUN"))


def test_operator_from_a_clean_install_serves_health(
    build: Callable[[str], Path], cluster: LocalCluster, tmp_path: Path
) -> None:
    venv = build("operator")
    cluster.kubectl("create", "namespace", "vf-image")
    port = free_port()
    command = [str(venv / "bin" / "voicefleet-operator"), f"--metrics-port={port}",
               "--metrics-host=127.0.0.1", "--namespace=vf-image"]  # fmt: skip
    env = {"KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": ""}
    operator = Process("voicefleet-operator (image)", command, tmp_path / "log", env=env).start()
    try:
        operator.wait_until(lambda: port_open(port), 30, "serving /healthz")
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", "vf-image", "--wait=false")


@pytest.mark.parametrize("component", COMPONENTS)
def test_dockerfile_runs_as_non_root_on_a_pinned_slim_base(component: str) -> None:
    preamble, build_stage, final = stages(component)
    assert args(preamble, "ARG") == ["PYTHON_IMAGE=python:3.11-slim-bookworm"]
    assert args(build_stage, "FROM") == ["${PYTHON_IMAGE} AS build"]
    assert args(final, "FROM") == ["${PYTHON_IMAGE}"]
    assert args(final, "COPY") == [f"--from=build {VENV} {VENV}"]
    assert args(final, "USER") == ["65532:65532"]
    assert args(final, "ENTRYPOINT") == [f'["voicefleet-{component}"]']
    # Secrets come from the pod's environment at run time, never from the build.
    settings = [rest.upper() for stage in stages(component) for k, rest in stage if k in SETS]
    assert not [s for s in settings if any(word in s for word in SECRET_WORDS)]


def requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def test_image_requirements_are_declared_and_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    pinned = requirement_names(ROOT / "constraints.txt")
    for component in COMPONENTS:
        names = requirement_names(IMAGES / f"{component}-requirements.txt")
        assert names - declared == set(), f"{component}: not in pyproject.toml"
        assert names - pinned == set(), f"{component}: not pinned in constraints.txt"


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins; a matched directory takes
    its contents with it; `*` stays within one path segment, `**` spans any number."""
    verdict = False
    parts = path.split("/")
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        segments = pattern.lstrip("!").strip("/").split("/")
        if any(_match(parts[:end], segments) for end in range(1, len(parts) + 1)):
            verdict = exclude
    return verdict


def _match(parts: list[str], segments: list[str]) -> bool:
    if not segments:
        return not parts
    if segments[0] == "**":
        return any(_match(parts[i:], segments[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], segments[0])
        and _match(parts[1:], segments[1:])
    )


def test_dockerignore_keeps_the_context_to_what_the_images_copy() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    copied = {
        source
        for component in COMPONENTS
        for copy in args(stages(component)[1], "COPY")
        for source in shlex.split(copy)[:-1]
    }
    for source in copied:
        files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.py")
        for path in files:
            relative = str(path.relative_to(ROOT))
            assert not ignored(relative, patterns), f"{relative} is copied but ignored"
    for kept_out in (".env", ".venv/bin/python", "tests/conftest.py", "frontend/package.json",
                     "operator/voicefleet_operator/__pycache__/main.cpython-311.pyc"):  # fmt: skip
        assert ignored(kept_out, patterns), f"{kept_out} would be in the build context"
