"""The operator in a busy cluster: its memory and CPU with 10,000 unrelated pods and
Deployments beside its fleet, as a ratio to the same fleet in an empty cluster.

Runs the operator three times on one KWOK control plane with a small fleet (N VoiceAgents,
one worker each): in a cluster holding only the fleet; after
10,000 pods and as many Deployments (replicas 0) of another application were created; and
once more beside them
with its pod and Deployment watches filtered in the operator only, as before they were
selected on the API server. Each run: start, wait until every VoiceAgent is reconciled,
then measure CPU over a steady window and RSS at its end.

    .venv/bin/python bench/operator_watch_scale.py [--agents 20] [--unrelated 10000] [--settle 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from _stack import credentials, stop_on_sigterm
from kubernetes import client, config
from operator_scale import NS, cpu_seconds, rss_mb, voice_agent, wait_reconciled

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.process import Process, free_port, port_open

ROOT = Path(__file__).resolve().parents[1]
OTHER_NS = "other-app"
CHUNK = 500
# The operator as it was: the same handlers with no server-side selectors.
CLIENT_SIDE = (
    "import sys, voicefleet_operator.handlers as h, voicefleet_operator.main as m\n"
    "configure = h.configure\n"
    "def unselected(settings, state):\n"
    "    configure(settings, state)\n"
    "    for resource in h.FLEET_RESOURCES:\n"
    "        del settings.watching.label_selectors[resource]\n"
    "h.configure = unselected\n"
    "m.main(sys.argv[1:])\n"
)


def fleet_agent(index: int, server: LiveKitServer) -> dict[str, object]:
    """A VoiceAgent keeping one worker: the fleet's pods and Deployments are watched too."""
    region = {"name": "local", "minReplicas": 1, "maxReplicas": 2,
              "livekit": {"url": server.url, "credentialsSecret": "lk"}}  # fmt: skip
    return voice_agent(f"agent-{index:03d}", [region], 5)


def unrelated(kind: str, index: int) -> dict[str, object]:
    labels = {"app": "other", "index": str(index)}
    container = {"name": "app", "image": "other:latest"}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"other-{index:05d}", "labels": labels},
                "spec": {"containers": [container]}}  # fmt: skip
    template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"other-{index:05d}", "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                     "template": template}}  # fmt: skip


def create_unrelated(cluster: LocalCluster, count: int) -> None:
    cluster.kubectl("create", "namespace", OTHER_NS)
    for kind in ("Pod", "Deployment"):
        for start in range(0, count, CHUNK):
            items = [unrelated(kind, i) for i in range(start, min(count, start + CHUNK))]
            manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
            cluster.kubectl("create", "-n", OTHER_NS, "-f", "-", "-o", "name", input=manifest)


def measure(work: Path, cluster: LocalCluster, agents: int, settle: float, label: str,
            client_side: bool = False) -> tuple[float, float, float]:  # fmt: skip
    """RSS (MB), CPU share in steady state and CPU seconds to reconcile, for one run."""
    port = free_port()
    entry = ["-c", CLIENT_SIDE] if client_side else ["-m", "voicefleet_operator.main"]
    operator = Process(
        "voicefleet-operator",
        [sys.executable, *entry, f"--metrics-port={port}", "--metrics-host=127.0.0.1",
         "--log-level=warning"],
        work / f"operator-{label}.log",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    ).start()  # fmt: skip
    try:
        operator.wait_until(lambda: port_open(port), 30, "serving /healthz")
        assert operator.popen is not None
        process = psutil.Process(operator.popen.pid)
        wait_reconciled(client.CustomObjectsApi(), agents, timeout=180)
        startup = cpu_seconds(process)
        time.sleep(settle)
        steady = (cpu_seconds(process) - startup) / settle
        rss = rss_mb(operator.popen.pid)
    finally:
        operator.stop()
    print(f"{label}: RSS {rss:.0f} MB, steady CPU {steady:.1%} of a core, "
          f"CPU to reconcile {startup:.1f} s", flush=True)  # fmt: skip
    return rss, steady, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--unrelated", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=20)
    args = parser.parse_args()
    stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="vf-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        cluster = LocalCluster(work / "cluster")
        stack.callback(cluster.stop)
        cluster.start()
        cluster.kubectl("apply", "-f", str(ROOT / "manifests" / "base" / "crd.yaml"))
        cluster.wait_established("voiceagents.voicefleet.io")
        cluster.kubectl("create", "namespace", NS)
        server = LiveKitServer(work / "livekit").start()
        stack.callback(server.stop)
        credentials(cluster, NS, "lk", server)
        config.load_kube_config(str(cluster.kubeconfig))
        for index in range(args.agents):
            cluster.kubectl("create", "-f", "-", input=json.dumps(fleet_agent(index, server)))
        alone = measure(work, cluster, args.agents, args.settle, "fleet alone")
        started = time.monotonic()
        create_unrelated(cluster, args.unrelated)
        print(f"created {args.unrelated} unrelated pods and {args.unrelated} Deployments in "
              f"{time.monotonic() - started:.0f}s", flush=True)  # fmt: skip
        selected = measure(work, cluster, args.agents, args.settle, "beside them, selected")
        before = "beside them, client-side filter (before)"
        filtered = measure(work, cluster, args.agents, args.settle, before, client_side=True)
    print()
    for name, run in (("server-side selectors", selected), ("client-side filter", filtered)):
        print(f"{name}: ratio to the fleet alone: RSS {run[0] / alone[0]:.2f}×, "
              f"steady CPU {run[1] / max(alone[1], 1e-9):.2f}×, "
              f"CPU to reconcile {run[2] / alone[2]:.2f}×")  # fmt: skip


if __name__ == "__main__":
    main()
