"""The operator's state: one object, created at startup and reached by handlers through kopf's
memo. What it holds lives as long as the process; what must survive a restart is in the
cluster (the objects, and the VoiceAgents' status)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes import client

from voicefleet_models.pricing import Pricing
from voicefleet_models.voice_agent import RegionSpec
from voicefleet_operator.events import EventRecorder
from voicefleet_operator.health import Liveness
from voicefleet_operator.kube import Kube
from voicefleet_operator.leadership import Leadership
from voicefleet_operator.livekit_load import Collectors, Endpoint
from voicefleet_operator.metrics import RegionSeries
from voicefleet_operator.policy import Stabilizer
from voicefleet_operator.storage import RememberedSpecs
from voicefleet_operator.worker_load import WorkerPod

AgentKey = tuple[str, str]  # (namespace, VoiceAgent)
RegionKey = tuple[str, str, str]  # (namespace, VoiceAgent, region)

CREDENTIALS_TTL_SECONDS = 30.0
# Reconciles in flight: enough to keep the API server busy, few enough that each VoiceAgent
# finishes soon instead of all of a large fleet finishing together at the end, and that the
# autoscaler's calls find a free connection.
RECONCILE_CONCURRENCY = 4


@dataclass(frozen=True)
class Launch:
    """What the command line hands to the startup handler (through kopf's memo): the cluster,
    the unit prices, the LiveKit collectors the webhook route shares with the loop, whether
    this process leads, and the tasks /healthz judges."""

    configuration: client.Configuration
    pricing: Pricing
    collectors: Collectors
    leadership: Leadership = field(default_factory=Leadership.alone)
    liveness: Liveness = field(default_factory=Liveness)
    network_policies: bool = True


@dataclass(frozen=True)
class Indexes:
    """kopf's live indexes, handed over at startup (see handlers.py)."""

    deployments: kopf.Index[RegionKey, dict[str, Any]]
    pods: kopf.Index[RegionKey, WorkerPod]
    configs: kopf.Index[AgentKey, str]


class Credentials:
    """LiveKit endpoints from their Secrets, each read at most every 30 s, not every tick."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._read: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}

    async def endpoint(self, namespace: str, region: RegionSpec) -> Endpoint:
        key = (namespace, region.livekit.credentials_secret)
        fetched, secret = self._read.get(key, (0.0, {}))
        if time.monotonic() - fetched > CREDENTIALS_TTL_SECONDS:
            secret = await self.kube.secret(*key)
            self._read[key] = (time.monotonic(), secret)
        return Endpoint(region.livekit.url, secret["api-key"], secret["api-secret"])


@dataclass
class FleetState:
    """Everything the handlers and the autoscaling loop share."""

    kube: Kube
    indexes: Indexes
    pricing: Pricing = field(default_factory=Pricing)
    collectors: Collectors = field(default_factory=Collectors)
    # The operator replica Events name as their reporting instance.
    instance: str = "voicefleet-operator"
    # Whether each region gets a NetworkPolicy (netpol.py).
    network_policies: bool = True
    credentials: Credentials = field(init=False)
    events: EventRecorder = field(init=False)
    stabilizers: dict[RegionKey, Stabilizer] = field(default_factory=dict)
    # The replicas last decided per region, and when they were last written: the Deployment
    # watch trails a write, so a difference seen soon after one is not drift.
    applied: dict[RegionKey, int] = field(default_factory=dict)
    written_at: dict[RegionKey, float] = field(default_factory=dict)
    series: RegionSeries = field(default_factory=RegionSeries)
    # The generation of each VoiceAgent whose objects were last applied.
    applied_generations: dict[AgentKey, int] = field(default_factory=dict)
    # Regions whose Deployment the watch has shown: a superset of those that exist, so a
    # reconcile lists objects to prune only when a dropped region may remain.
    deployed_regions: dict[AgentKey, set[str]] = field(default_factory=dict)
    # Worker configurations replaced but still mounted: the loop deletes each once no pod
    # mounts it (see reconcile.retire_configs).
    retiring_configs: dict[AgentKey, set[str]] = field(default_factory=dict)
    remembered_specs: RememberedSpecs = field(default_factory=RememberedSpecs)
    reconciles: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(RECONCILE_CONCURRENCY)
    )

    def __post_init__(self) -> None:
        self.credentials = Credentials(self.kube)
        self.events = EventRecorder(self.kube, self.instance)

    def forget(self, agent: AgentKey) -> None:
        """Drop what is kept about a VoiceAgent that is gone."""
        self.retiring_configs.pop(agent, None)
        self.applied_generations.pop(agent, None)
        self.deployed_regions.pop(agent, None)
        self.series.forget(agent)
        self.collectors.release_agent(agent)
        for region in [k for k in self.applied if k[:2] == agent]:
            self.applied.pop(region)
            self.written_at.pop(region, None)
            self.stabilizers.pop(region, None)

    async def close(self) -> None:
        await self.collectors.stop()
        await self.kube.close()
