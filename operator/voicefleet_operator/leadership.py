"""Leader election on a coordination.k8s.io Lease, with the timing Kubernetes' own controllers
use: of the operator replicas, only the lease holder scales fleets, reconciles and writes
status; the others keep their watches and indexes warm and wait.

The holder renews the lease every RETRY_SECONDS. A standby takes it over once it has seen the
lease unchanged for its leaseDurationSeconds, measured on its own clock (clocks of two nodes
need not agree), with a write conditional on the resourceVersion it read, so two standbys never
both win. A holder that could not renew for RENEW_DEADLINE_SECONDS, shorter than the lease,
gives up before anyone may take over, and its process exits: a restarted replica starts again
as a standby. A holder that stops cleanly hands the lease back, so the next takes over at its
next attempt.

Takeover bound, holder killed: a standby sees the last renewal within RETRY_SECONDS, waits
LEASE_SECONDS, and tries every RETRY_SECONDS: at most LEASE_SECONDS + 2 × RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voicefleet_operator.kube import Conflict, Kube, NotFound
from voicefleet_operator.status import rfc3339

LEASE_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10.0
RETRY_SECONDS = 2.0
TAKEOVER_BOUND_SECONDS = LEASE_SECONDS + 2 * RETRY_SECONDS
log = logging.getLogger("voicefleet.leadership")


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_seconds: int = LEASE_SECONDS
    renew_deadline_seconds: float = RENEW_DEADLINE_SECONDS
    retry_seconds: float = RETRY_SECONDS

    @property
    def path(self) -> str:
        return f"{self.collection}/{self.name}"

    @property
    def collection(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"


def own_identity() -> str:
    """The pod's name where the chart passes it, else host and process: unique per process,
    so a restarted operator is a new candidate, never mistaken for the holder it replaced."""
    base = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


def lease_namespace(given: str | None) -> str:
    """Where the lease lives: as given, else the pod's own namespace, else `default`."""
    if given:
        return given
    if from_env := os.environ.get("POD_NAMESPACE"):
        return from_env
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as file:
            return file.read().strip()
    except OSError:
        return "default"


def may_take(holder: str | None, identity: str, unchanged_for: float, lease_seconds: int) -> bool:
    """Whether `identity` may write the lease: it holds it, nobody does, or the holder has not
    renewed it for a whole lease duration (as seen by `identity`)."""
    return not holder or holder == identity or unchanged_for >= lease_seconds


def lease_record(config: LeaseConfig, spec: dict[str, Any], *, holding: bool) -> dict[str, Any]:
    """The lease's spec after a write by `config.identity`: renewed when it holds the lease
    already, acquired (one more transition) when not; `holding=False` releases it."""
    now = rfc3339(time.time())
    ours = spec.get("holderIdentity") == config.identity
    record = {
        "holderIdentity": config.identity if holding else None,
        "leaseDurationSeconds": config.lease_seconds if holding else 1,
        "acquireTime": spec.get("acquireTime") if ours else now,
        "renewTime": now,
        "leaseTransitions": int(spec.get("leaseTransitions", 0)) + (0 if ours else 1),
    }
    return {k: v for k, v in record.items() if v is not None}


class Leadership:
    """Whether this process leads: `leading` is set once it holds the lease, `lost` once it
    held it and could not renew in time. `beat` is when the last attempt began (liveness)."""

    def __init__(self, kube: Kube | None, config: LeaseConfig | None) -> None:
        self.kube, self.config = kube, config
        self.leading = asyncio.Event()
        self.lost = asyncio.Event()
        self.beat = time.monotonic()
        self._renewed = float("-inf")
        self._seen: tuple[Any, ...] | None = None
        self._seen_at = 0.0

    @classmethod
    def alone(cls) -> Leadership:
        """Without election: this process leads from the start (one replica)."""
        alone = cls(None, None)
        alone.leading.set()
        return alone

    @property
    def identity(self) -> str:
        return self.config.identity if self.config else socket.gethostname()

    async def run(self) -> None:
        """Try to acquire, then renew, the lease until it is lost (then return)."""
        if self.config is None:
            return
        while not self.lost.is_set():
            self.beat = time.monotonic()
            held = await self._attempt(self.config)
            self._follow(held, self.config)
            await asyncio.sleep(self.config.retry_seconds)

    def _follow(self, held: bool, config: LeaseConfig) -> None:
        now = time.monotonic()
        if held:
            self._renewed = now
            if not self.leading.is_set():
                log.info(f"leading: holding lease {config.namespace}/{config.name}")
                self.leading.set()
        elif self.leading.is_set() and now - self._renewed > config.renew_deadline_seconds:
            log.error(f"lost lease {config.namespace}/{config.name}: not renewed in "
                      f"{config.renew_deadline_seconds:g} s")  # fmt: skip
            self.lost.set()

    async def _attempt(self, config: LeaseConfig) -> bool:
        """One read and, where allowed, one conditional write: whether we hold the lease."""
        assert self.kube is not None
        try:
            lease = await self.kube.read(config.path)
        except NotFound:
            return await self._create(config)
        except Exception as error:  # noqa: BLE001 - the API server may be away for a while
            log.warning(f"cannot read lease {config.path}: {error}")
            return False
        spec, meta = lease.get("spec", {}), lease.get("metadata", {})
        seen = (spec.get("holderIdentity"), spec.get("renewTime"), meta.get("resourceVersion"))
        if seen != self._seen:
            self._seen, self._seen_at = seen, time.monotonic()
        duration = int(spec.get("leaseDurationSeconds", config.lease_seconds))
        if not may_take(seen[0], config.identity, time.monotonic() - self._seen_at, duration):
            return False
        return await self._write(config, meta, lease_record(config, spec, holding=True))

    async def _create(self, config: LeaseConfig) -> bool:
        assert self.kube is not None
        meta = {"name": config.name, "namespace": config.namespace}
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
                 "spec": lease_record(config, {}, holding=True)}  # fmt: skip
        try:
            await self.kube.create(config.collection, lease)
        except Exception as error:  # noqa: BLE001 - another replica was faster, or an outage
            log.info(f"cannot create lease {config.path}: {error}")
            return False
        return True

    async def _write(self, config: LeaseConfig, meta: dict[str, Any], spec: dict[str, Any]) -> bool:
        assert self.kube is not None
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": spec,
                 "metadata": {"name": config.name, "namespace": config.namespace,
                              "resourceVersion": meta.get("resourceVersion")}}  # fmt: skip
        try:
            await self.kube.replace(config.path, lease)
        except Conflict:
            return False  # someone else wrote it first: read again next time
        except Exception as error:  # noqa: BLE001 - an outage: the deadline decides
            log.warning(f"cannot renew lease {config.path}: {error}")
            return False
        return True

    async def release(self) -> None:
        """Hand the lease back on a clean stop, so a standby need not wait for it to expire."""
        if self.config is None or self.kube is None or not self.leading.is_set():
            return
        if self.lost.is_set():
            return
        try:
            lease = await self.kube.read(self.config.path)
            if lease.get("spec", {}).get("holderIdentity") == self.config.identity:
                spec = lease_record(self.config, lease["spec"], holding=False)
                await self._write(self.config, lease["metadata"], spec)
        except Exception as error:  # noqa: BLE001 - the lease then simply expires
            log.warning(f"cannot release lease {self.config.path}: {error}")


async def while_leading(leadership: Leadership, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` once this process leads, until it stops or the lease is lost (then cancel
    it at once: a successor may take over soon after). Its failure is this task's."""
    await leadership.leading.wait()
    task = asyncio.ensure_future(work())
    lost = asyncio.ensure_future(leadership.lost.wait())
    try:
        await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for running in (task, lost):
            running.cancel()
        await asyncio.gather(task, lost, return_exceptions=True)
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
