"""What /healthz says: whether this process still does its job, so the kubelet restarts it
when it does not.

- Leader election: its task runs and began an attempt within ELECTION_STALE_SECONDS.
- On the leader, the autoscaling loop: its task runs and finished a pass within
  LOOP_STALE_SECONDS. A pass comes at least every 5 s; one that takes longer than this is
  stuck, not slow (each API request gives up after 30 s and a few retries).
- The watches: every kopf watcher task started is still running. kopf reconnects a silent
  stream by itself (after watching.inactivity_timeout); a watcher task that ended leaves its
  resource unwatched for the rest of the process's life.

With the chart's probe (every 10 s, 3 failures) a dead task restarts the operator within
about 30 s, a stuck loop within LOOP_STALE_SECONDS + 30 s.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

ELECTION_STALE_SECONDS = 30.0
LOOP_STALE_SECONDS = 120.0
# kopf names each watcher task "watcher for <resource>@<namespace>".
WATCHER_PREFIX = "watcher for "


class Beating(Protocol):
    """Something that records when it last made progress (time.monotonic())."""

    beat: float


@dataclass
class Liveness:
    """The tasks /healthz judges, registered as they start."""

    election: asyncio.Task[None] | None = None
    elector: Beating | None = None
    loop: asyncio.Task[None] | None = None
    autoscaler: Beating | None = None
    watchers: set[str] = field(default_factory=set)

    def problems(self, leading: bool) -> list[str]:
        """Why this process is not alive, one line each; [] when it is."""
        now = time.monotonic()
        found = _task_problems("leader election", self.election, self.elector,
                               ELECTION_STALE_SECONDS, now)  # fmt: skip
        if leading:
            found += _task_problems("autoscaling loop", self.loop, self.autoscaler,
                                    LOOP_STALE_SECONDS, now)  # fmt: skip
        return found + self._watch_problems()

    def _watch_problems(self) -> list[str]:
        running = {t.get_name() for t in asyncio.all_tasks() if not t.done()}
        running = {name for name in running if name.startswith(WATCHER_PREFIX)}
        self.watchers |= running
        return [f"{name} has ended" for name in sorted(self.watchers - running)]


def _task_problems(
    what: str, task: asyncio.Task[None] | None, beating: Beating | None, stale: float, now: float
) -> list[str]:
    if task is None:
        return []  # not started yet: the process is starting
    if task.done():
        return [f"{what} stopped"]
    if beating is not None and now - beating.beat > stale:
        return [f"{what} made no progress for {now - beating.beat:.0f} s"]
    return []
