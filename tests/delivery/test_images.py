"""The container images as `make images` builds them from images/*.Dockerfile: what they run,
as which user, with what inside. (The real node runs them as pods: tests/e2e/test_real_fleet.)"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from voicefleet_devstack.images import COMPONENTS, Image, context_files
from voicefleet_operator.chart import ROOT

IMAGES = ROOT / "images"
SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL")
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def run_in(images: dict[str, Image]) -> Iterator[Callable[[str], Run]]:
    """Run a command in a container of a component's image, from its OCI archive, as the
    image's user (chroot isolation, as the build's RUN steps: no runtime needed)."""
    containers: dict[str, str] = {}

    def runner(component: str) -> Run:
        if component not in containers:
            source = f"oci-archive:{images[component].archive}"
            containers[component] = _buildah("from", "--quiet", source).stdout.strip()

        def run(*command: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["buildah", "run", "--isolation=chroot", "--network=host",
                 containers[component], "--", *command],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        return run

    yield runner
    for container in containers.values():
        _buildah("rm", container)


def _buildah(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, check=True)


def config(image: Image) -> dict[str, Any]:
    out = _buildah("inspect", "--type=image", image.reference).stdout
    image_config: dict[str, Any] = json.loads(out)["OCIv1"]["config"]
    return image_config


@pytest.mark.parametrize("component", COMPONENTS)
def test_entry_point_starts_in_the_image(component: str, run_in: Callable[[str], Run]) -> None:
    run = run_in(component)
    result = run(f"voicefleet-{component}", "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: voicefleet-{component}" in result.stdout
    # Each image carries its own component's stack only.
    other = {"operator": "livekit.agents", "agent": "kopf"}[component]
    assert run("python", "-c", f"import {other}").returncode != 0
    assert run("python", "-c", "import voicefleet_devstack").returncode != 0


def test_agent_image_has_the_silero_model_and_espeak(run_in: Callable[[str], Run]) -> None:
    run = run_in("agent")
    load = "from livekit.plugins import silero; silero.VAD.load(); import voicefleet_agent.worker"
    result = run("python", "-c", load)
    assert result.returncode == 0, result.stderr
    speech = run("sh", "-c", "espeak-ng --stdout hello | head -c 4")
    assert speech.returncode == 0, speech.stderr
    assert speech.stdout == "RIFF"  # a WAV file of speech


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_runs_as_non_root_with_no_secret_baked_in(
    component: str, images: dict[str, Image]
) -> None:
    image_config = config(images[component])
    assert image_config["User"] == "65532:65532"
    assert image_config["Entrypoint"] == [f"voicefleet-{component}"]
    names = [variable.split("=", 1)[0].upper() for variable in image_config.get("Env", [])]
    assert not [n for n in names if any(word in n for word in SECRET_WORDS)], names


@pytest.mark.parametrize("component", COMPONENTS)
def test_dockerfile_builds_on_the_pinned_slim_base(component: str) -> None:
    text = (IMAGES / f"{component}.Dockerfile").read_text()
    assert re.findall(r"^ARG PYTHON_IMAGE=(.*)$", text, re.M) == ["python:3.11-slim-bookworm"]
    assert re.findall(r"^FROM (.*)$", text, re.M) == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_the_build_cache_key_covers_everything_the_dockerfiles_copy() -> None:
    """An image is rebuilt when a file it copies changes: every COPY source is hashed."""
    hashed = {path.relative_to(ROOT) for path in context_files()}
    for component in COMPONENTS:
        text = (IMAGES / f"{component}.Dockerfile").read_text()
        for line in re.findall(r"^COPY (?!--from)(.*)$", text, re.M):
            for source in line.split()[:-1]:
                root = Path(source.rstrip("/"))
                assert any(path == root or root in path.parents for path in hashed), source


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
