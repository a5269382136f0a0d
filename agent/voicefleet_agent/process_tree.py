"""The CPU and memory of a worker's process tree: its main process, the forkserver and the job
processes. The worker samples its own tree for its load and /metrics; the sizing ramp reads the
tree of a worker on the same machine (`--worker-pid`)."""

from __future__ import annotations

import contextlib

import psutil  # type: ignore[import-untyped]


class WorkerProcesses:
    """A process and its descendants, including the CPU of descendants that have exited."""

    def __init__(self, pid: int | None = None) -> None:
        self.root = psutil.Process(pid)

    def tree(self) -> list[psutil.Process]:
        return [self.root, *self.root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User and system time of the tree; a job process that has exited and been reaped
        counts in its parent's children times, so the sum only grows."""
        total = 0.0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def memory_bytes(self) -> int:
        """Proportional set size summed: pages the forked processes share count once."""
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
        return int(total)
