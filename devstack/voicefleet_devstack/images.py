"""`make images`: the operator and agent images built from images/*.Dockerfile with buildah,
saved as OCI archives that any runtime loads (containerd, podman, docker, skopeo).

No registry is reachable from a development machine without a network, so the Dockerfiles'
base (their PYTHON_IMAGE build argument, python:3.11-slim-bookworm for users) is made here from
Debian packages with mmdebstrap: bookworm's python3.11 on minbase. Nothing else differs from
`docker build`. Every result is cached by the content it is made from: an unchanged tree
rebuilds nothing, a changed package rebuilds only the images that copy it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from voicefleet_devstack.process import CACHE, ComponentError

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("operator", "agent")
REPOSITORY = "ghcr.io/voicefleet/voicefleet-{component}"
SUITE = "bookworm"
# What python:3.11-slim-bookworm offers the Dockerfiles: `python` 3.11 with venv and pip,
# CA certificates, and useradd.
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates", "passwd")
# Certificates this machine trusts beyond Debian's (a TLS-inspecting proxy's, say). The base
# trusts them too, and pip is told to use the system store, so the builds reach the package
# index exactly as this machine does.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
BUILDERS = ("buildah", "mmdebstrap")
T = TypeVar("T")


@dataclass(frozen=True)
class Image:
    """One built image: its reference and the OCI archive holding it."""

    reference: str
    archive: Path

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def say(message: str) -> None:
    print(message, flush=True)


def build_images(
    components: Sequence[str] = COMPONENTS, out: Path = CACHE / "images"
) -> dict[str, Image]:
    """The images of `components` (built where their archive is missing) and the pause image a
    local node's pods are sandboxed with."""
    missing = [tool for tool in BUILDERS if shutil.which(tool) is None]
    if missing:
        raise ComponentError(f"{', '.join(missing)} not installed: run scripts/setup.sh system")
    out.mkdir(parents=True, exist_ok=True)
    base = _timed("base image (mmdebstrap, Debian bookworm + python3.11)", _base_image)
    images = {"pause": _timed("pause image", lambda: _pause_image(base, out))}
    for component in components:
        images[component] = _timed(
            f"{component} image", functools.partial(_component_image, component, base, out)
        )
    return images


def _timed(name: str, build: Callable[[], T]) -> T:
    start = time.monotonic()
    say(f"==> {name}")
    result = build()
    say(f"    {name}: {time.monotonic() - start:.0f}s")
    return result


# -- the base ----------------------------------------------------------------------------------


def _base_image() -> str:
    """The local stand-in for python:3.11-slim-bookworm, in buildah's image store, keyed by
    its recipe: the suite, the packages, the hooks and the certificates they copy."""
    certificates = sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []
    hooks = [
        f'mkdir -p "$1{LOCAL_CAS}"',
        *(f'cp {c} "$1{LOCAL_CAS}/"' for c in certificates),
        'chroot "$1" update-ca-certificates',
        'printf "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n" > "$1/etc/pip.conf"',
        # As in the slim image: no package lists, no apt cache.
        'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
    ]
    reference = (
        f"localhost/voicefleet-base:{_digest([SUITE, *BASE_PACKAGES, *hooks], certificates)}"
    )
    if _stored(reference):
        say(f"    cached ({reference})")
        return reference
    with tempfile.TemporaryDirectory(prefix="voicefleet-base-") as work:
        rootfs = Path(work) / "rootfs.tar"
        _run(
            ["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             *(f"--customize-hook={hook}" for hook in hooks), SUITE, str(rootfs)],
        )  # fmt: skip
        container = _output(["buildah", "from", "scratch"])
        try:
            _run(["buildah", "add", "--quiet", container, str(rootfs), "/"])
            _run(["buildah", "config", "--cmd", "python3", container])
            _run(["buildah", "commit", "--quiet", "--rm", container, reference])
        except BaseException:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
            raise
    return reference


def _pause_image(base: str, out: Path) -> Image:
    """The pod sandbox: it only holds the pod's namespaces, so it sleeps (on the base, whose
    layer the other images share)."""
    reference = f"localhost/voicefleet-pause:{base.rsplit(':', 1)[1]}"
    archive = out / f"pause-{base.rsplit(':', 1)[1]}.tar"
    if not archive.exists():
        container = _output(["buildah", "from", "--quiet", base])
        _run(["buildah", "config", "--entrypoint", '["/bin/sleep", "infinity"]',
              "--cmd", "", "--user", "65535:65535", container])  # fmt: skip
        _run(["buildah", "commit", "--quiet", "--rm", container, reference])
        _save(reference, archive)
    else:
        say(f"    cached ({archive.name})")
    return Image(reference, archive)


# -- the components ----------------------------------------------------------------------------


def context_files(root: Path = ROOT) -> list[Path]:
    """The files of the build context: what .dockerignore lets in, without bytecode."""
    kept = [
        line[1:].strip().rstrip("/")
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    files: list[Path] = []
    for entry in kept:
        path = root / entry
        candidates = path.rglob("*") if path.is_dir() else [path]
        files += [
            f
            for f in candidates
            if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"
        ]
    return sorted(files)


def _component_image(component: str, base: str, out: Path) -> Image:
    dockerfile = ROOT / "images" / f"{component}.Dockerfile"
    tag = _digest([component, base], [dockerfile, *context_files()])[:16]
    reference = f"{REPOSITORY.format(component=component)}:{tag}"
    archive = out / f"{component}-{tag}.tar"
    if archive.exists():
        say(f"    cached ({archive.name})")
        return Image(reference, archive)
    # chroot isolation and the host's network: RUN steps need neither a container runtime's
    # cgroup setup nor a bridge of their own, only the package indexes this machine reaches.
    _run(
        ["buildah", "build", "--layers", "--isolation=chroot", "--network=host",
         f"--build-arg=PYTHON_IMAGE={base}", f"--file={dockerfile}", f"--tag={reference}",
         str(ROOT)],
    )  # fmt: skip
    _save(reference, archive)
    _remove_stale(out, component, archive)
    return Image(reference, archive)


def build_example(name: str, agent: Image, out: Path = CACHE / "images") -> Image:
    """A user's image from examples/<name>/Dockerfile, built FROM `agent` as its AGENT_IMAGE
    build argument says (what a user does with `docker build` and a published tag)."""
    context = ROOT / "examples" / name
    files = sorted(f for f in context.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    tag = _digest([name, agent.reference], files)[:16]
    reference = f"localhost/voicefleet-example-{name}:{tag}"
    archive = out / f"example-{name}-{tag}.tar"
    if archive.exists():
        say(f"    cached ({archive.name})")
        return Image(reference, archive)
    if not _stored(agent.reference):  # built on an earlier run, and the store since emptied
        _run(["buildah", "pull", "--quiet", f"oci-archive:{agent.archive}"])
    _run(
        ["buildah", "build", "--layers", "--isolation=chroot", "--pull=never",
         f"--build-arg=AGENT_IMAGE={agent.reference}", f"--tag={reference}", str(context)],
    )  # fmt: skip
    _save(reference, archive)
    _remove_stale(out, f"example-{name}", archive)
    return Image(reference, archive)


# -- helpers -----------------------------------------------------------------------------------


def _save(reference: str, archive: Path) -> None:
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _run(["buildah", "push", "--quiet", reference, f"oci-archive:{partial}:{reference}"])
    partial.rename(archive)


def _remove_stale(out: Path, prefix: str, kept: Path) -> None:
    """Earlier builds' archives of the same image: only the newest is ever loaded."""
    for stale in out.glob(f"{prefix}-*.tar"):
        if stale != kept:
            stale.unlink()


def _stored(reference: str) -> bool:
    result = subprocess.run(["buildah", "inspect", "--type=image", reference],
                            capture_output=True, check=False)  # fmt: skip
    return result.returncode == 0


def _digest(words: Iterable[str], files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for word in words:
        digest.update(word.encode() + b"\0")
    for path in files:
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _run(command: list[str]) -> None:
    """Run a build step with its output shown, indented; fail naming the command."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        say(f"    {line.rstrip()}")
        tail = [*tail[-20:], line]
    if process.wait() != 0:
        raise ComponentError(
            f"{' '.join(command[:2])} failed ({process.returncode}):\n{''.join(tail)}"
        )


def _output(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make images", description="build the voicefleet images into OCI archives"
    )
    parser.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"any of {', '.join(COMPONENTS)} (default: all)",
    )
    parser.add_argument("--out", type=Path, default=CACHE / "images")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.components) - set(COMPONENTS))
    if unknown:
        parser.error(f"no image named {', '.join(unknown)} (choose from {', '.join(COMPONENTS)})")
    try:
        images = build_images(args.components or COMPONENTS, args.out)
    except ComponentError as error:
        print(f"make images: {error}", file=sys.stderr)
        return 1
    for image in images.values():
        say(f"{image.reference}  {image.archive}")
    return 0
