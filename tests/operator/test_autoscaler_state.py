"""The autoscaler's own state: what it keeps about a VoiceAgent ends with the VoiceAgent."""

from __future__ import annotations

import asyncio

import prometheus_client
import pytest
from kubernetes import client

from voicefleet_models.voice_agent import RegionSpec
from voicefleet_operator.autoscaler import Autoscaler, Tracked
from voicefleet_operator.kube import Kube
from voicefleet_operator.livekit_load import Endpoint
from voicefleet_operator.state import FleetState, Indexes

from ..helpers import voice_agent


async def test_a_voiceagent_deleted_while_its_tick_awaits_leaves_no_series(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reading_secret, secret_read = asyncio.Event(), asyncio.Event()

    async def slow_endpoint(namespace: str, region: RegionSpec) -> Endpoint:
        reading_secret.set()
        await secret_read.wait()
        raise LookupError("Secret not found")

    body = voice_agent("deleted-mid-tick", "state")
    body["metadata"].update(uid="0f6c2a52", generation=1)
    body["status"] = {"observedGeneration": 1}
    indexes = Indexes({}, {}, {})  # kopf's indexes are mappings
    scaler = Autoscaler(FleetState(Kube(client.Configuration()), indexes))
    monkeypatch.setattr(scaler.state.credentials, "endpoint", slow_endpoint)
    key = ("state", "deleted-mid-tick")
    scaler.agents[key] = Tracked.of(body)  # a plain watch body

    tick = asyncio.create_task(scaler.tick_all([key]))
    await reading_secret.wait()
    scaler.forget(key)  # the DELETED watch event arrives while the tick awaits the Secret
    secret_read.set()
    await tick

    assert 'agent="deleted-mid-tick"' not in prometheus_client.generate_latest().decode()
    assert not [k for k in [*scaler.state.applied, *scaler.state.stabilizers] if k[:2] == key]
