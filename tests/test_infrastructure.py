"""Smoke tests: each real part the suite relies on starts and does its basic job."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml
from livekit import api, rtc

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import binary, free_port
from voicefleet_devstack.prometheus import Prometheus
from voicefleet_operator.crd import custom_resource_definition

from .helpers import eventually

ROOT = Path(__file__).resolve().parents[1]


def test_custom_resource_is_served(cluster: LocalCluster) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(custom_resource_definition()))
    cluster.wait_established("voiceagents.voicefleet.io")
    cluster.kubectl("create", "namespace", "smoke-crd")
    agent = {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": "hello", "namespace": "smoke-crd"},
        "spec": {
            "image": "voicefleet-agent:dev",
            "pipeline": {
                "stt": [{"provider": "offline"}],
                "llm": [{"provider": "offline"}],
                "tts": [{"provider": "offline"}],
            },
            "regions": [
                {
                    "name": "local",
                    "livekit": {"url": "ws://127.0.0.1:7880", "credentialsSecret": "livekit"},
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(agent))
    stored = json.loads(cluster.kubectl("get", "va", "hello", "-n", "smoke-crd", "-o", "json"))
    assert stored["spec"]["regions"][0]["name"] == "local"
    # Defaults declared in the models are applied by the API server.
    assert stored["spec"]["scaling"]["sessionsPerWorker"] == 8
    assert stored["spec"]["regions"][0]["maxReplicas"] == 10


def test_deployment_pods_run_and_are_garbage_collected(cluster: LocalCluster) -> None:
    cluster.kubectl("create", "namespace", "smoke-gc")
    cluster.kubectl(
        "create", "deployment", "web", "-n", "smoke-gc", "--image=example/web:1", "--replicas=3"
    )

    def pods() -> list[dict[str, Any]]:
        out = cluster.kubectl("get", "pods", "-n", "smoke-gc", "-o", "json")
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    eventually(lambda: [p["status"].get("phase") for p in pods()] == ["Running"] * 3)
    cluster.kubectl("delete", "deployment", "web", "-n", "smoke-gc", "--wait=false")
    eventually(lambda: not pods() and "web" not in cluster.kubectl("get", "rs", "-n", "smoke-gc"))


def test_livekit_room_and_participant(livekit: LiveKitServer) -> None:
    async def scenario() -> tuple[list[str], int]:
        async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name="smoke-room"))
            token = (
                api.AccessToken(livekit.api_key, livekit.api_secret)
                .with_identity("smoke-caller")
                .with_grants(api.VideoGrants(room_join=True, room="smoke-room"))
                .to_jwt()
            )
            room = rtc.Room()
            await room.connect(livekit.url, token)
            try:
                rooms = await lk.room.list_rooms(api.ListRoomsRequest())
                listing = await lk.room.list_participants(
                    api.ListParticipantsRequest(room="smoke-room")
                )
                return [r.name for r in rooms.rooms], len(listing.participants)
            finally:
                await room.disconnect()

    names, participants = asyncio.run(scenario())
    assert "smoke-room" in names
    assert participants == 1


@pytest.mark.slow  # starts a server of its own
def test_prometheus_scrapes_a_target(tmp_path: Path) -> None:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter(
        "voicefleet_smoke_events", "Smoke events.", registry=registry
    )
    counter.inc(3)
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, "127.0.0.1", registry=registry)
    prometheus = Prometheus(tmp_path / "prometheus", targets={"smoke": [f"127.0.0.1:{port}"]})
    try:
        prometheus.start()
        result = eventually(lambda: prometheus.query("voicefleet_smoke_events_total"))
        assert float(result[0]["value"][1]) == 3.0
        assert result[0]["metric"]["job"] == "smoke"
    finally:
        prometheus.stop()
        server.shutdown()
        thread.join(5)


def test_helm_renders_the_chart() -> None:
    out = subprocess.run(
        [
            binary("helm"),
            "template",
            "smoke",
            str(ROOT / "charts" / "voicefleet"),
            "--kube-version=1.36.0",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    kinds = {doc["kind"] for doc in yaml.safe_load_all(out) if doc}
    assert "Deployment" in kinds


def test_deno_runs_typescript(tmp_path: Path) -> None:
    script = tmp_path / "sum.ts"
    script.write_text("const xs: number[] = [1, 2, 3];\nconsole.log(xs.reduce((a, b) => a + b));\n")
    out = subprocess.run(
        [binary("deno"), "run", str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "6"


@pytest.mark.slow  # starts a server of its own
def test_chromium_screenshots_a_local_page(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        "<html><body style='background:#00ff00'><h1>voicefleet</h1></body></html>"
    )
    handler = lambda *a: SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shot = tmp_path / "shot.png"
    try:
        subprocess.run(
            [
                binary("chromium"),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={shot}",
                "--window-size=400,300",
                f"http://127.0.0.1:{server.server_address[1]}/index.html",
            ],
            capture_output=True,
            timeout=90,
            check=True,
        )
    finally:
        server.shutdown()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
