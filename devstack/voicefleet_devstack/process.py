"""Start, probe and stop one local server process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(
    os.environ.get("VOICEFLEET_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicefleet"
)


class ComponentError(RuntimeError):
    """A server could not be found, started or reached; the message names it."""


def binary(name: str) -> str:
    """Path of a tool installed by scripts/setup.sh (or found on PATH)."""
    cached = CACHE / "bin" / name
    if cached.exists():
        return str(cached)
    found = shutil.which(name)
    if found:
        return found
    raise ComponentError(
        f"{name} is not installed: run scripts/setup.sh (looked in {cached.parent})"
    )


# Ports already handed out: a port is free again once its probe socket closes, and the kernel
# may pick it for the next probe, before the first taker has bound it.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now, and that this
    process has not handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Process:
    """One server process in its own process group, logging to a file."""

    name: str
    args: Sequence[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(self.args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Poll `ready` until it holds; fail naming the component and its log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ComponentError(
                    f"{self.name} exited with code {self.exit_code()} before it was {what}; "
                    f"log: {self.log}\n{self.tail()}"
                )
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001 - a failing probe means not ready yet
                pass
            time.sleep(0.1)
        raise ComponentError(
            f"{self.name} was not {what} within {timeout:.0f}s; log: {self.log}\n{self.tail()}"
        )

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after `grace`."""
        if self.popen is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if self.popen.poll() is not None:
                break
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        # Reap stray children that outlived their leader in the same group, and return only
        # once they are gone: a kill is delivered asynchronously.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        _wait_group_gone(self.popen.pid, timeout=5.0)


def _wait_group_gone(group: int, timeout: float) -> None:
    """Wait up to `timeout` until no live process of `group` is left (zombies do not count:
    orphans are reaped by init, which in some containers never does)."""
    deadline = time.monotonic() + timeout
    while _live_members(group) and time.monotonic() < deadline:
        time.sleep(0.02)


def _live_members(group: int) -> bool:
    """Whether a process of the group is alive, from /proc (False where there is none)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # After the parenthesised command name: state, ppid, pgrp, ...
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == group and state not in ("Z", "X"):
                return True
    return False
