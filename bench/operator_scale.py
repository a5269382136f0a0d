"""Many VoiceAgents on one operator: time to reconcile all after start, memory, LiveKit calls;
then why the operator's Kubernetes client is its own (voicefleet_operator.kube).

Creates N VoiceAgents × 3 regions (three livekit-servers) on the local control plane, then
starts the operator and measures until every VoiceAgent reports Ready for its generation.
Idle fleets (minReplicas 0) keep the fake nodes' pod count out of the measurement.

With the operator stopped, the same process then sends the requests a reconcile makes for each
VoiceAgent (server-side apply of a ConfigMap, a list by label selector, a merge patch of the
status) through voicefleet_operator.kube and through kubernetes_asyncio, in alternating rounds
at the same concurrency, and prints both clients' latencies, CPU and the ratios.

    .venv/bin/python bench/operator_scale.py [--agents 1000] [--settle 30] [--client-rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import ssl
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import kubernetes_asyncio
import psutil  # type: ignore[import-untyped]
from _stack import credentials, percentile, start_operator, stop_on_sigterm
from kubernetes import client, config, watch

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import free_port
from voicefleet_models.voice_agent import GROUP, PLURAL, VERSION
from voicefleet_operator.kube import FIELD_MANAGER, Kube

ROOT = Path(__file__).resolve().parents[1]
NS = "scale"
REGIONS = ("us", "eu", "ap")
POLL_INTERVAL = 5
# Requests in flight at once in the client comparison, as the operator's handlers keep them.
CLIENT_CONCURRENCY = 16


def agent(index: int, servers: dict[str, LiveKitServer]) -> dict[str, object]:
    regions = [
        {"name": r, "minReplicas": 0, "maxReplicas": 10,
         "livekit": {"url": servers[r].url, "credentialsSecret": f"lk-{r}"}}
        for r in REGIONS
    ]  # fmt: skip
    return voice_agent(f"agent-{index:04d}", regions, POLL_INTERVAL)


def voice_agent(name: str, regions: list[dict[str, object]], poll: float) -> dict[str, object]:
    """A VoiceAgent of simulated providers and no warm workers, in the bench's namespace."""
    return {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "image": "voicefleet-agent:bench",
            "pipeline": {s: [{"provider": "simulated"}] for s in ("stt", "llm", "tts")},
            "regions": regions,
            "scaling": {"warmWorkers": 0, "pollIntervalSeconds": poll},
        },
    }


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


Call = Callable[[str], Awaitable[object]]


@dataclass
class ClientRun:
    """One client's requests over every VoiceAgent: latencies per request, process CPU."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    def add(self, other: ClientRun) -> None:
        for request, values in other.latencies.items():
            self.latencies.setdefault(request, []).extend(values)
        self.cpu_seconds += other.cpu_seconds
        self.wall_seconds += other.wall_seconds


def config_map(agent_name: str) -> dict[str, Any]:
    """A worker ConfigMap the size of the operator's, owned by the bench's field manager."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{agent_name}-bench", "namespace": NS,
                     "labels": {"voicefleet.io/agent": agent_name}},
        "data": {"agent.json": '{"pipeline": {"stt": [{"provider": "simulated"}]}}' * 8},
    }  # fmt: skip


def own_client(kube: Kube, value: int) -> dict[str, Call]:
    return {
        "apply": lambda name: kube.apply(config_map(name)),
        "list": lambda name: kube.list("ConfigMap", NS, f"voicefleet.io/agent={name}"),
        "patch": lambda name: kube.patch_status(NS, name, {"activeSessions": value}),
    }


def kubernetes_asyncio_client(
    api: kubernetes_asyncio.client.ApiClient, value: int
) -> dict[str, Call]:
    core = kubernetes_asyncio.client.CoreV1Api(api)
    custom = kubernetes_asyncio.client.CustomObjectsApi(api)
    return {
        "apply": lambda name: core.patch_namespaced_config_map(
            f"{name}-bench", NS, config_map(name), field_manager=FIELD_MANAGER, force=True,
            _content_type="application/apply-patch+yaml"),
        "list": lambda name: core.list_namespaced_config_map(
            NS, label_selector=f"voicefleet.io/agent={name}"),
        "patch": lambda name: custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, NS, PLURAL, name, {"status": {"activeSessions": value}},
            _content_type="application/merge-patch+json"),
    }  # fmt: skip


async def timed_round(calls: dict[str, Call], names: list[str]) -> ClientRun:
    """Every request for every VoiceAgent, CLIENT_CONCURRENCY at a time."""
    run = ClientRun({request: [] for request in calls})
    gate = asyncio.Semaphore(CLIENT_CONCURRENCY)

    async def one(request: str, name: str) -> None:
        async with gate:
            started = time.perf_counter()
            await calls[request](name)
            run.latencies[request].append(time.perf_counter() - started)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(request, name) for name in names for request in calls))
    run.cpu_seconds, run.wall_seconds = time.process_time() - cpu, time.perf_counter() - wall
    return run


async def compare_clients(kubeconfig: Path, names: list[str], rounds: int) -> dict[str, ClientRun]:
    """Alternating rounds of both clients after one warm-up round each (connections, caches);
    every round writes a new status value, so each patch is a real write."""
    config.load_kube_config(str(kubeconfig))
    kube = Kube(client.Configuration.get_default_copy())
    theirs = kubernetes_asyncio.client.Configuration()
    await kubernetes_asyncio.config.load_kube_config(str(kubeconfig), client_configuration=theirs)
    runs = {"voicefleet_operator.kube": ClientRun(), "kubernetes_asyncio": ClientRun()}
    async with kubernetes_asyncio.client.ApiClient(theirs) as api:
        for value in range(rounds + 1):
            for label, calls in (
                ("voicefleet_operator.kube", own_client(kube, value)),
                ("kubernetes_asyncio", kubernetes_asyncio_client(api, value)),
            ):
                measured = await timed_round(calls, names)
                if value > 0:
                    runs[label].add(measured)
    await kube.close()
    return runs


def versus(label: str, ours: float, theirs: float, unit: str = "ms", scale: float = 1e3) -> str:
    """`label` of both clients, ours first, and the ratio theirs / ours."""
    return (
        f"{label} {ours * scale:.1f} {unit} vs {theirs * scale:.1f} {unit} (×{theirs / ours:.2f})"
    )


def print_comparison(runs: dict[str, ClientRun], agents: int) -> None:
    ours, theirs = runs["voicefleet_operator.kube"], runs["kubernetes_asyncio"]
    print(
        f"\nKubernetes client, voicefleet_operator.kube vs kubernetes_asyncio (× = theirs / ours): "
        f"{agents} VoiceAgents × apply, list and patch, {CLIENT_CONCURRENCY} in flight"
    )
    for request, values in ours.latencies.items():
        other = theirs.latencies[request]
        p95 = versus("p95", percentile(values, 0.95), percentile(other, 0.95))
        print(f"  {request:5} {versus('median', median(values), median(other))}; {p95}")
    requests = sum(len(values) for values in ours.latencies.values())
    cpu = versus("CPU per request", ours.cpu_seconds / requests, theirs.cpu_seconds / requests,
                 "µs", 1e6)  # fmt: skip
    print(f"  {cpu}; {versus('wall', ours.wall_seconds, theirs.wall_seconds, 's', 1)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=30, help="seconds to watch after")
    parser.add_argument("--workdir", help="keep server logs here")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="record the API server's CPU profile for this long")  # fmt: skip
    parser.add_argument("--client-rounds", type=int, default=2,
                        help="measured rounds per client in the client comparison")  # fmt: skip
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
        operator.stop()
        names = [f"agent-{index:04d}" for index in range(args.agents)]
        runs = asyncio.run(compare_clients(cluster.kubeconfig, names, args.client_rounds))
    print()
    print(f"VoiceAgents reconciled after operator start: {done}/{args.agents} in {elapsed:.1f}s "
          f"(target ≤ 60 s for 1,000); operator CPU in that time {operator_cpu:.0f} s")  # fmt: skip
    print(f"operator RSS after {args.settle:.0f}s steady state: {rss:.0f} MB (target ≤ 300 MB); "
          f"CPU in steady state {steady_cpu:.0%} of a core")  # fmt: skip
    per_poll = polled / (args.settle / POLL_INTERVAL)
    print(f"LiveKit ListRooms calls per {POLL_INTERVAL}s poll interval, all VoiceAgents: "
          f"{per_poll:.1f} (one per LiveKit endpoint: {len(REGIONS)})")  # fmt: skip
    print_comparison(runs, len(names))


if __name__ == "__main__":
    main()
