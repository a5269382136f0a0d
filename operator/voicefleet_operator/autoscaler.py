"""The autoscaling loop: one task that sizes VoiceAgent regions' fleets as their inputs change.

VoiceAgents, Deployments and worker pods come from kopf's watches (an event handler and two
indexes), demand from the shared LiveKit collectors, so a tick makes no API call unless
something changed: a new replica count, a status field or an Event. A collector that sees new
demand wakes the loop at once. Replicas change only through the policy; when LiveKit cannot be
read the fleet holds and a condition and a Warning Event say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kopf
import pydantic

from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.render import Owner
from voicefleet_operator.scaling import Region, scale_region
from voicefleet_operator.scaling import secret_problem as secret_problem
from voicefleet_operator.state import AgentKey, FleetState
from voicefleet_operator.status import RegionOutcome, StatusReport, status_changes, was_reachable

# Inputs wake the loop for the VoiceAgents they concern; a pass over all of them this often
# catches what time alone changes: stabilization windows ending, demand data going stale.
FULL_PASS_SECONDS = 5.0
TICK_CONCURRENCY = 8
log = logging.getLogger("voicefleet.autoscaler")


@dataclass
class Tracked:
    """A VoiceAgent as last seen by the watch, its spec parsed once per change, not per tick."""

    body: dict[str, Any]
    spec: VoiceAgentSpec | None  # None when the spec is invalid

    @property
    def agent_name(self) -> str:
        """The LiveKit dispatch name demand is counted by."""
        name = self.spec.agent_name if self.spec else None
        return name or str(self.body["metadata"]["name"])

    @classmethod
    def of(cls, body: kopf.Body | dict[str, Any]) -> Tracked:
        # Shallow: nothing below the top level is changed here, and each watch event brings
        # new objects. managedFields is large and never read.
        snapshot = dict(body)
        snapshot["metadata"] = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
        try:
            spec: VoiceAgentSpec | None = VoiceAgentSpec.model_validate(snapshot["spec"])
        except pydantic.ValidationError:
            spec = None
        return cls(snapshot, spec)


class Autoscaler:
    """The VoiceAgents kopf has seen, the loop that sizes their fleets, and the operator's
    state, which this loop owns."""

    def __init__(self, state: FleetState) -> None:
        self.state = state
        self.agents: dict[AgentKey, Tracked] = {}
        self.wake = asyncio.Event()
        # VoiceAgents changed since the last pass; all of them when demand changed.
        self.dirty: set[AgentKey] = set()
        self.everything_dirty = False
        self._failures: dict[AgentKey, str] = {}
        self.beat = time.monotonic()  # when the last pass ended: /healthz judges the loop by it

    def track(self, body: kopf.Body) -> None:
        """The VoiceAgent as the watch shows it now."""
        key = (body.metadata.namespace or "", body.metadata.name or "")
        self.agents[key] = Tracked.of(body)
        self.changed(key)

    def changed(self, key: AgentKey) -> None:
        self.dirty.add(key)
        self.wake.set()

    def demand_changed(self, agent_names: set[str] | None) -> None:
        """LiveKit's demand moved for these agent names (None: for every agent)."""
        if agent_names is None:
            self.everything_dirty = True
        else:
            self.dirty.update(k for k, a in self.agents.items() if a.agent_name in agent_names)
        self.wake.set()

    def forget(self, key: AgentKey) -> None:
        self.agents.pop(key, None)
        self.state.forget(key)

    def tracks(self, owner: Owner) -> bool:
        return (owner.namespace, owner.name) in self.agents

    async def run(self) -> None:
        """A pass over the VoiceAgents whose inputs changed as soon as they do, and over all
        of them every few seconds: a large fleet costs CPU by its changes, not by its size."""
        next_full = 0.0
        while True:
            self.beat = time.monotonic()
            self.wake.clear()
            if self.everything_dirty or time.monotonic() >= next_full:
                self.everything_dirty, self.dirty = False, set()
                next_full = time.monotonic() + FULL_PASS_SECONDS
                await self.tick_all(list(self.agents))
            elif self.dirty:
                keys, self.dirty = self.dirty, set()
                await self.tick_all(keys)
            with contextlib.suppress(TimeoutError):
                timeout = max(0.0, next_full - time.monotonic())
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)

    async def tick_all(self, keys: Iterable[AgentKey]) -> None:
        pending = iter([(key, self.agents[key]) for key in keys if key in self.agents])

        async def lane() -> None:
            for key, agent in pending:
                if key not in self.agents:
                    continue  # deleted since this pass began
                try:
                    await self.tick(agent)
                    self._failures.pop(key, None)
                except Exception as error:  # noqa: BLE001 - one agent must not stop others
                    message = f"autoscaling {key[0]}/{key[1]} failed: {error}"
                    if self._failures.get(key) != message:
                        log.warning(message)
                    self._failures[key] = message

        # A few lanes side by side: a pass is bound by API round trips, not by the policy's
        # arithmetic; lanes, not a task per VoiceAgent, as most ticks make no call at all.
        await asyncio.gather(*(lane() for _ in range(TICK_CONCURRENCY)))

    async def tick(self, agent: Tracked) -> None:
        body, spec = agent.body, agent.spec
        if spec is None:
            return  # the reconcile handler reports an invalid spec
        meta, status = body["metadata"], body.get("status", {})
        applied = self.state.applied_generations.get((meta["namespace"], meta["name"]))
        applied = applied or status.get("observedGeneration")
        if applied is None:
            return  # nothing applied yet: no fleet to size, no status to report
        owner = Owner(meta["name"], meta["namespace"], meta["uid"])
        # A region dropped from the spec reads its LiveKit endpoint no more.
        self.state.collectors.release_agent(
            (owner.namespace, owner.name), keep=[r.name for r in spec.regions]
        )
        await self._retire_unused_configs(owner)
        outcomes = [
            await scale_region(
                self.state,
                Region(body, owner, spec, region, agent.agent_name),
                self.demand_changed,
                lambda: self.tracks(owner),
            )
            for region in spec.regions
        ]
        if not self.tracks(owner):
            return  # deleted while this tick awaited: report nothing about it
        if any(o.pending for o in outcomes):
            # Nothing to report before LiveKit first answers (or fails to): reporting it as
            # unreachable would be a false alarm, and the first poll wakes this VoiceAgent.
            return
        report = StatusReport(int(meta.get("generation", 0)), int(applied), agent.agent_name,
                              len(spec.regions))  # fmt: skip
        await self._report(body, owner, outcomes, report)

    async def _report(
        self,
        body: dict[str, Any],
        owner: Owner,
        outcomes: list[RegionOutcome],
        report: StatusReport,
    ) -> None:
        """Warn when LiveKit became unreadable, and write what changed in status."""
        kube, status = self.state.kube, body.get("status", {})
        unreachable = [o.unreachable for o in outcomes if o.unreachable]
        if unreachable and was_reachable(status):
            await self.state.events.post(body, "Warning", "LiveKitUnreachable",
                                         f"holding replicas: {'; '.join(unreachable)}",
                                         "PollLiveKit")  # fmt: skip
        changes = status_changes(status, outcomes, report)
        if changes:
            await kube.patch_status(owner.namespace, owner.name, changes)
            body["status"] = {**status, **changes}  # until the watch delivers it

    async def _retire_unused_configs(self, owner: Owner) -> None:
        key, retiring_configs = (owner.namespace, owner.name), self.state.retiring_configs
        retiring = retiring_configs.get(key)
        if not retiring:
            return
        unused = retiring - set(self.state.indexes.configs.get(key, []))
        await asyncio.gather(
            *(self.state.kube.delete("ConfigMap", owner.namespace, n) for n in unused)
        )
        retiring -= unused
        if not retiring:
            retiring_configs.pop(key, None)
