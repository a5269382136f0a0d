"""Worker pod created → worker registered with LiveKit, on a real node with the image cached.

A region's Deployment (rendered by the operator's own render functions, offline pipeline) is
scaled from 0 to 1 again and again; each start is timed from the scale request until the new
pod's /readyz answers 200, which the worker does once LiveKit has registered it. Prints every
start, then the median, p95 and max (anchor: LiveKit Cloud's cold start 10–20 s; goal ≤ 5 s
p95).

    python bench/node_start.py [--starts 7]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from _stack import apply, credentials, real_node_stack, stop_on_sigterm, summary

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.render import Owner, region_objects

TARGET_SECONDS = 5.0
NS = "bench"


def fleet_spec(url: str, image: str) -> VoiceAgentSpec:
    offline = {"stt": [{"provider": "offline"}], "llm": [{"provider": "offline"}],
               "tts": [{"provider": "offline"}]}  # fmt: skip
    return VoiceAgentSpec.model_validate(
        {
            "image": image,
            "pipeline": offline,
            "regions": [{"name": "node", "livekit": {"url": url, "credentialsSecret": "lk"}}],
            "drainTimeoutSeconds": 5,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        }
    )


def pod_ips(cluster: LocalCluster) -> dict[str, str]:
    out = cluster.kubectl("get", "pods", "-n", NS, "-o", "json")
    return {
        p["metadata"]["name"]: p["status"].get("podIP", "")
        for p in json.loads(out)["items"]
        if "deletionTimestamp" not in p["metadata"]
    }


def ready(ip: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{ip}:9100/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_once(cluster: LocalCluster, deployment: str, timeout: float = 60) -> float:
    before = set(pod_ips(cluster))
    started = time.monotonic()
    cluster.kubectl("scale", "deployment", deployment, "-n", NS, "--replicas=1")
    while time.monotonic() - started < timeout:
        fresh = {n: ip for n, ip in pod_ips(cluster).items() if n not in before and ip}
        if any(ready(ip) for ip in fresh.values()):
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"no new worker ready within {timeout:.0f}s")


def stop_all(cluster: LocalCluster, deployment: str) -> None:
    cluster.kubectl("scale", "deployment", deployment, "-n", NS, "--replicas=0")
    while cluster.kubectl("get", "pods", "-n", NS, "-o", "name").strip():  # terminating too
        time.sleep(0.2)


def main(starts: int) -> None:
    stop_on_sigterm()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        node = stack.enter_context(real_node_stack(Path(tmp), stack))
        cluster = node.cluster
        cluster.kubectl("create", "namespace", NS)
        credentials(cluster, NS, "lk", node.livekit)
        owner = Owner("bench", NS, "00000000-0000-0000-0000-000000000000")
        spec = fleet_spec(node.livekit.url, node.images["agent"].reference)
        objects = region_objects(owner, spec, spec.regions[0], replicas=0)
        for manifest in objects:
            manifest["metadata"].pop("ownerReferences")  # no VoiceAgent CRD here
            apply(cluster, manifest)
        deployment = next(m for m in objects if m["kind"] == "Deployment")["metadata"]["name"]
        times: list[float] = []
        for n in range(1, starts + 1):
            times.append(start_once(cluster, deployment))
            print(f"start {n}/{starts}: registered after {times[-1]:.2f} s", flush=True)
            stop_all(cluster, deployment)
    label = "pod created → worker registered with LiveKit (image cached)"
    print(f"{summary(label, times)} (target p95 ≤ {TARGET_SECONDS:.0f}s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=7)
    main(parser.parse_args().starts)
