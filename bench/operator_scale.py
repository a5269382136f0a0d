"""Many VoiceAgents on one operator: time to reconcile all after start, memory, LiveKit calls.

Creates N VoiceAgents × 3 regions (three livekit-servers) on the local control plane, then
starts the operator and measures until every VoiceAgent reports Ready for its generation.
Idle fleets (minReplicas 0) keep the fake nodes' pod count out of the measurement.

    .venv/bin/python bench/operator_scale.py [--agents 1000] [--settle 30]
"""

from __future__ import annotations

import argparse
import re
import ssl
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
from _stack import credentials, start_operator, stop_on_sigterm
from kubernetes import client, config, watch

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import free_port

ROOT = Path(__file__).resolve().parents[1]
NS = "scale"
REGIONS = ("us", "eu", "ap")
POLL_INTERVAL = 5


def agent(index: int, servers: dict[str, LiveKitServer]) -> dict[str, object]:
    return {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": f"agent-{index:04d}", "namespace": NS},
        "spec": {
            "image": "voicefleet-agent:bench",
            "pipeline": {s: [{"provider": "simulated"}] for s in ("stt", "llm", "tts")},
            "regions": [
                {"name": r, "minReplicas": 0, "maxReplicas": 10,
                 "livekit": {"url": servers[r].url, "credentialsSecret": f"lk-{r}"}}
                for r in REGIONS
            ],
            "scaling": {"warmWorkers": 0, "pollIntervalSeconds": POLL_INTERVAL},
        },
    }  # fmt: skip


def is_reconciled(item: dict[str, Any]) -> bool:
    status = item.get("status", {})
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
    )
    return ready and status.get("observedGeneration") == item["metadata"]["generation"]


def wait_reconciled(objects: client.CustomObjectsApi, count: int, timeout: float) -> int:
    """Follow a watch (cheaper for the API server than listing every second) until `count`
    VoiceAgents are reconciled; print progress each second. Returns the number reconciled."""
    started = time.monotonic()
    done: set[str] = set()
    last_print = 0.0
    stream = watch.Watch().stream(
        objects.list_namespaced_custom_object, "voicefleet.io", "v1alpha1", NS, "voiceagents",
        timeout_seconds=int(timeout),
    )  # fmt: skip
    for event in stream:
        item = event["object"]
        name = item["metadata"]["name"]
        (done.add if is_reconciled(item) else done.discard)(name)
        now = time.monotonic() - started
        if now - last_print >= 1 or len(done) >= count:
            print(f"  {now:6.1f}s: {len(done)}/{count} reconciled", flush=True)
            last_print = now
        if len(done) >= count:
            break
    return len(done)


def profile_apiserver(cluster: LocalCluster, seconds: int, output: Path) -> threading.Thread:
    """Record the API server's CPU profile (Go pprof) in the background."""

    def record() -> None:
        request = urllib.request.Request(
            f"{cluster.server}/debug/pprof/profile?seconds={seconds}",
            headers={"Authorization": f"Bearer {cluster.token}"},
        )
        context = ssl.create_default_context(cafile=str(cluster.workdir / "pki" / "apiserver.crt"))
        with urllib.request.urlopen(request, timeout=seconds + 30, context=context) as response:
            output.write_bytes(response.read())
        print(f"API server CPU profile: go tool pprof -top {output}", flush=True)

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    return thread


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def polls(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    counts = re.findall(r"voicefleet_operator_livekit_poll_duration_seconds_count\{[^}]*\} (\S+)",
                        text)  # fmt: skip
    return sum(float(c) for c in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=30, help="seconds to watch after")
    parser.add_argument("--workdir", help="keep server logs here")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="record the API server's CPU profile for this long")  # fmt: skip
    args = parser.parse_args()
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp, ExitStack() as stack:
        work = Path(args.workdir or tmp)
        cluster = LocalCluster(work / "cluster", profiling=bool(args.profile))
        stack.callback(cluster.stop)
        cluster.start()
        cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
        cluster.wait_established("voiceagents.voicefleet.io")
        cluster.kubectl("create", "namespace", NS)
        servers = {r: LiveKitServer(work / f"livekit-{r}").start() for r in REGIONS}
        for region, server in servers.items():
            stack.callback(server.stop)
            credentials(cluster, NS, f"lk-{region}", server)
        config.load_kube_config(str(cluster.kubeconfig))
        objects = client.CustomObjectsApi()
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: objects.create_namespaced_custom_object(
                "voicefleet.io", "v1alpha1", NS, "voiceagents", agent(i, servers)),
                range(args.agents)))  # fmt: skip
        print(f"created {args.agents} VoiceAgents × {len(REGIONS)} regions "
              f"in {time.monotonic() - started:.1f}s", flush=True)  # fmt: skip

        port = free_port()
        started = time.monotonic()
        operator = start_operator(work, cluster, port)
        stack.callback(operator.stop)
        if args.profile:
            profile_apiserver(cluster, args.profile, work / "apiserver.pprof")
        done = wait_reconciled(objects, args.agents, timeout=900)
        elapsed = time.monotonic() - started
        assert operator.popen is not None
        process = psutil.Process(operator.popen.pid)
        operator_cpu = cpu_seconds(process)
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        first = polls(metrics_url)
        time.sleep(args.settle)
        polled = polls(metrics_url) - first
        steady_cpu = (cpu_seconds(process) - operator_cpu) / args.settle
        rss = rss_mb(operator.popen.pid)
    print()
    print(f"VoiceAgents reconciled after operator start: {done}/{args.agents} in {elapsed:.1f}s "
          f"(target ≤ 60 s for 1,000); operator CPU in that time {operator_cpu:.0f} s")  # fmt: skip
    print(f"operator RSS after {args.settle:.0f}s steady state: {rss:.0f} MB (target ≤ 300 MB); "
          f"CPU in steady state {steady_cpu:.0%} of a core")  # fmt: skip
    per_poll = polled / (args.settle / POLL_INTERVAL)
    print(f"LiveKit ListRooms calls per {POLL_INTERVAL}s poll interval, all VoiceAgents: "
          f"{per_poll:.1f} (one per LiveKit endpoint: {len(REGIONS)})")  # fmt: skip


if __name__ == "__main__":
    main()
