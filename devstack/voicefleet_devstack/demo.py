"""`make demo`: the whole fleet on one machine, keyless by default.

A local control plane with the CRD and the operator, a livekit-server (dev keys), the sample
VoiceAgent, the token function on Deno, the frontend and Prometheus scraping the operator and
the workers. Where this machine can run a real node (root, containerd, runc, cgroups), the
agent and pause images are built and worker pods run on it: each call takes a session of a
real worker and the warm worker the autoscaler adds is another real pod. Elsewhere the demo
says why in one line, worker pods are KWOK stand-ins and one worker process serves calls.
State lives under the voicefleet cache, fresh on every run. Ctrl-C stops every process.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.images import Image, build_images
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.node import RealNode, why_unavailable
from voicefleet_devstack.process import (
    CACHE,
    ComponentError,
    Process,
    binary,
    free_port,
    port_open,
)
from voicefleet_devstack.prometheus import PodTargets, Prometheus
from voicefleet_operator.crd import custom_resource_definition
from voicefleet_operator.render import config_in_use

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "offline-demo.yaml"
TOKEN_FUNCTION = ROOT / "supabase" / "functions" / "livekit-token" / "index.ts"
FRONTEND = ROOT / "frontend"
RULES = ROOT / "dashboards" / "generated" / "rules.yaml"  # recording rules and alerts
AGENT = "voicefleet-demo"
NAMESPACE = "voicefleet-demo"


@dataclass(frozen=True)
class Ports:
    """Fixed ports, so the printed URLs and the example manifest stay the same every run."""

    livekit: int = 7880
    operator: int = 8080
    webhook: int = 8081
    worker_metrics: int = 9100
    token: int = 54321
    frontend: int = 5173
    prometheus: int = 9090

    def busy(self) -> list[int]:
        return [p for p in vars(self).values() if port_open(p)]


@dataclass
class Part:
    name: str
    where: str
    healthy: Callable[[], bool]


def say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def step(what: str) -> Iterator[None]:
    start = time.monotonic()
    say(f"==> {what}")
    yield
    say(f"    {what}: {time.monotonic() - start:.1f}s")


def run_demo(state: Path = CACHE / "demo", ports: Ports = Ports()) -> int:
    busy = ports.busy()
    if busy:
        say(f"ports in use: {', '.join(map(str, busy))}; stop what listens there and retry")
        return 1
    shutil.rmtree(state, ignore_errors=True)
    with ExitStack() as stack:
        demo = Demo(state, ports, stack)
        try:
            parts = demo.start()
        except (ComponentError, TimeoutError, subprocess.CalledProcessError) as error:
            say(f"demo failed to start: {error}")
            return 1
        except KeyboardInterrupt:
            say("interrupted while starting; stopping what was started")
            return 130
        print_summary(parts, state, ports, real_node=demo.no_real_node is None)
        wait_for_interrupt()
    say("demo stopped: every process it started has exited")
    return 0


class Demo:
    """Starts the parts in dependency order; the ExitStack stops them in reverse."""

    def __init__(self, state: Path, ports: Ports, stack: ExitStack) -> None:
        self.state, self.ports, self.stack = state, ports, stack
        self.cloud = bool(os.environ.get("DEEPGRAM_API_KEY") and os.environ.get("GOOGLE_API_KEY"))
        self.no_real_node = why_unavailable()

    def start(self) -> list[Part]:
        if self.no_real_node:
            say(f"no real node: {self.no_real_node}; worker pods are KWOK stand-ins and one "
                "worker process on this machine serves calls")  # fmt: skip
            cluster, node, images = self._kwok_cluster(), None, None
        else:
            images = self._images()
            cluster = self._cluster(nodes=0, what="etcd, kube-apiserver, controller-manager, "
                                    "scheduler")  # fmt: skip
            node = self._node(cluster, images)
        livekit = self._livekit(host=node.address if node else "127.0.0.1")
        with step("VoiceAgent CRD and the operator"):
            cluster.kubectl("apply", "-f", "-", input=json.dumps(custom_resource_definition()))
            cluster.wait_established("voiceagents.voicefleet.io")
            operator = self._operator(cluster)
        with step(
            f"sample VoiceAgent {AGENT} ({'Deepgram + Gemini' if self.cloud else 'offline'})"
            + (" on the real node" if node else "")
        ):
            self._sample(cluster, livekit, images["agent"] if images else None)
            operator.wait_until(functools.partial(_ready, cluster), 120, "done reconciling")
        workers: Part
        if node:
            workers = Part(f"agent workers ({node.name})", f"pods in namespace {NAMESPACE}",
                           functools.partial(_workers_ready, cluster))  # fmt: skip
        else:
            with step("agent worker (the configuration the operator rendered)"):
                worker = self._worker(cluster, livekit)
            workers = Part("agent worker", f"http://127.0.0.1:{self.ports.worker_metrics}/metrics",
                           lambda: worker.running)  # fmt: skip
        with step("token function (Deno)"):
            self._token_function(livekit)
        with step("frontend (vite build)"):
            self._frontend()
        prometheus = self._prometheus(cluster, pods=node is not None)
        return self._parts(cluster, livekit, workers, prometheus)

    def _images(self) -> dict[str, Image]:
        with step("images: operator, agent, pause (buildah, cached by content)"):
            return build_images()

    def _cluster(self, nodes: int, what: str) -> LocalCluster:
        with step(f"control plane: {what}"):
            cluster = LocalCluster(self.state / "cluster", nodes=nodes)
            self.stack.callback(cluster.stop)
            return cluster.start()

    def _kwok_cluster(self) -> LocalCluster:
        what = "etcd, kube-apiserver, controller-manager, scheduler, KWOK"
        return self._cluster(nodes=1, what=what)

    def _node(self, cluster: LocalCluster, images: dict[str, Image]) -> RealNode:
        with step("real node: kubelet, containerd, runc; images loaded"):
            node = RealNode(cluster, self.state / "node")
            self.stack.callback(node.stop)
            node.start(images["pause"].reference)
            node.load(*(image.archive for image in images.values()))
            return node

    def _livekit(self, host: str) -> LiveKitServer:
        with step(f"livekit-server (dev keys) on {host}"):
            livekit = LiveKitServer(
                self.state / "livekit",
                api_key="devkey",
                api_secret="voicefleet-demo-secret-not-for-production",
                port=self.ports.livekit,
                host=host,  # a real node's pods reach it on the node's address
                webhook_urls=[f"http://127.0.0.1:{self.ports.webhook}/livekit/webhook"],
            )
            self.stack.callback(livekit.stop)
            return livekit.start()

    def _prometheus(self, cluster: LocalCluster, pods: bool) -> Prometheus:
        with step("Prometheus"):
            prometheus = Prometheus(
                self.state / "prometheus",
                targets={"voicefleet-operator": [f"127.0.0.1:{self.ports.operator}"]},
                rule_files=[RULES],
                scrape_interval="5s",
                port=self.ports.prometheus,
            )
            if pods:
                selector = f"voicefleet.io/agent={AGENT}"
                workers = PodTargets(cluster, NAMESPACE, selector, self.ports.worker_metrics)
                prometheus.pod_targets["voicefleet-agent"] = workers
            else:
                worker = f"127.0.0.1:{self.ports.worker_metrics}"
                prometheus.targets["voicefleet-agent"] = [worker]
            self.stack.callback(prometheus.stop)
            return prometheus.start()

    def _spawn(self, process: Process) -> Process:
        self.stack.callback(process.stop)
        return process.start()

    def _operator(self, cluster: LocalCluster) -> Process:
        operator = self._spawn(
            Process(
                "voicefleet-operator",
                [sys.executable, "-m", "voicefleet_operator.main",
                 f"--metrics-port={self.ports.operator}", "--metrics-host=127.0.0.1",
                 f"--webhook-port={self.ports.webhook}", "--webhook-host=127.0.0.1"],
                self.state / "operator.log",
                env={"KUBECONFIG": str(cluster.kubeconfig)},
            )
        )  # fmt: skip
        operator.wait_until(lambda: port_open(self.ports.operator), 30, "serving /healthz")
        return operator

    def _sample(self, cluster: LocalCluster, livekit: LiveKitServer, image: Image | None) -> None:
        sample = yaml.safe_load(EXAMPLE.read_text())
        if image:
            _on_real_node(sample, image, livekit)
        cluster.kubectl("create", "namespace", NAMESPACE)
        cluster.kubectl(
            "create", "secret", "generic", "livekit-local", "-n", NAMESPACE,
            f"--from-literal=api-key={livekit.api_key}",
            f"--from-literal=api-secret={livekit.api_secret}",
        )  # fmt: skip
        if self.cloud:
            sample = _with_cloud_providers(cluster, sample)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(sample))

    def _worker(self, cluster: LocalCluster, livekit: LiveKitServer) -> Process:
        deployment = json.loads(
            cluster.kubectl("get", "deployment", f"{AGENT}-local", "-n", NAMESPACE, "-o", "json")
        )
        rendered = cluster.kubectl(
            "get", "configmap", str(config_in_use(deployment["spec"]["template"])),
            "-n", NAMESPACE, "-o", "jsonpath={.data.agent\\.json}",
        )  # fmt: skip
        config = json.loads(rendered)
        config["observability"]["metricsPort"] = self.ports.worker_metrics
        path = self.state / "agent.json"
        path.write_text(json.dumps(config, indent=2))
        worker = self._spawn(
            Process(
                "voicefleet-agent",
                [sys.executable, "-m", "voicefleet_agent", "start"],
                self.state / "agent.log",
                env={
                    "VOICEFLEET_CONFIG": str(path),
                    "LIVEKIT_URL": livekit.url,
                    "LIVEKIT_API_KEY": livekit.api_key,
                    "LIVEKIT_API_SECRET": livekit.api_secret,
                    "VOICEFLEET_WORKER_HTTP_PORT": str(free_port()),
                },
            )
        )
        readyz = f"http://127.0.0.1:{self.ports.worker_metrics}/readyz"
        worker.wait_until(functools.partial(_http_ok, readyz), 90, "registered with LiveKit")
        return worker

    def _token_function(self, livekit: LiveKitServer) -> None:
        deno = self._spawn(
            Process(
                "livekit-token",
                [binary("deno"), "run", "--allow-net", "--allow-env", str(TOKEN_FUNCTION)],
                self.state / "token-function.log",
                env={
                    "PORT": str(self.ports.token),
                    "LIVEKIT_URL": livekit.url,
                    "LIVEKIT_API_KEY": livekit.api_key,
                    "LIVEKIT_API_SECRET": livekit.api_secret,
                    "LIVEKIT_AGENT_NAME": AGENT,
                    # Keyless and sign-in free: guests on, for the demo's own page only.
                    "ALLOW_GUESTS": "true",
                    "CORS_ALLOWED_ORIGINS": ",".join(
                        f"http://{host}:{self.ports.frontend}"
                        for host in ("127.0.0.1", "localhost")
                    ),
                },
                cwd=TOKEN_FUNCTION.parent,
            )
        )
        deno.wait_until(lambda: port_open(self.ports.token), 90, f"serving on {self.ports.token}")

    def _frontend(self) -> None:
        dist = self.state / "frontend"
        env = {
            **os.environ,
            "VITE_TOKEN_ENDPOINT": token_url(self.ports),
            "VITE_AGENT_NAME": AGENT,
            # Keyless: no sign-in, whatever a frontend/.env says (empty values override it).
            "VITE_SUPABASE_URL": "",
            "VITE_SUPABASE_PUBLISHABLE_KEY": "",
            "VITE_SUPABASE_ANON_KEY": "",
            "VITE_ALLOW_GUESTS": "",
        }
        with (self.state / "frontend-build.log").open("w") as log:
            subprocess.run(
                ["npm", "run", "--silent", "build", "--", "--outDir", str(dist), "--emptyOutDir"],
                cwd=FRONTEND, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                timeout=300,
            )  # fmt: skip
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(dist))
        server = ThreadingHTTPServer(("127.0.0.1", self.ports.frontend), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.stack.callback(server.shutdown)

    def _parts(
        self,
        cluster: LocalCluster,
        livekit: LiveKitServer,
        workers: Part,
        prometheus: Prometheus,
    ) -> list[Part]:
        p = self.ports
        return [
            Part("livekit-server", livekit.url, functools.partial(_http_ok, livekit.http_url)),
            Part("kube-apiserver", cluster.server, lambda: bool(cluster.kubectl("get", "--raw",
                                                                               "/readyz"))),
            Part("operator", f"http://127.0.0.1:{p.operator}/metrics",
                 functools.partial(_http_ok, f"http://127.0.0.1:{p.operator}/healthz")),
            workers,
            Part("token function", token_url(p), lambda: port_open(p.token)),
            Part("frontend", f"http://127.0.0.1:{p.frontend}/", lambda: port_open(p.frontend)),
            Part("prometheus", prometheus.url,
                 functools.partial(_http_ok, f"{prometheus.url}/-/ready")),
        ]  # fmt: skip


def token_url(ports: Ports) -> str:
    return f"http://127.0.0.1:{ports.token}/functions/v1/livekit-token"


def _with_cloud_providers(cluster: LocalCluster, sample: dict[str, Any]) -> dict[str, Any]:
    """Deepgram and Gemini instead of the offline providers, keys in a Secret."""
    cluster.kubectl(
        "create", "secret", "generic", "voice-keys", "-n", NAMESPACE,
        f"--from-literal=deepgram={os.environ['DEEPGRAM_API_KEY']}",
        f"--from-literal=google={os.environ['GOOGLE_API_KEY']}",
    )  # fmt: skip
    spec = sample["spec"]
    spec["pipeline"].update(
        stt=[{"provider": "deepgram"}, *spec["pipeline"]["stt"]],
        llm=[{"provider": "google"}, *spec["pipeline"]["llm"]],
        tts=[{"provider": "deepgram"}, *spec["pipeline"]["tts"]],
    )
    spec["env"] = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": "voice-keys", "key": key}}}
        for var, key in (("DEEPGRAM_API_KEY", "deepgram"), ("GOOGLE_API_KEY", "google"))
    ]
    return sample


def _on_real_node(sample: dict[str, Any], image: Image, livekit: LiveKitServer) -> None:
    """The locally built agent image, livekit-server on the node's address, and requests
    small enough for a few workers on a laptop."""
    spec = sample["spec"]
    spec["image"] = image.reference
    spec["regions"][0]["livekit"]["url"] = livekit.url
    spec["resources"] = {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "2Gi"},
    }


def _workers_ready(cluster: LocalCluster) -> bool:
    out = cluster.kubectl("get", "deployment", f"{AGENT}-local", "-n", NAMESPACE, "-o", "json")
    return int(json.loads(out).get("status", {}).get("readyReplicas", 0)) > 0


def _ready(cluster: LocalCluster) -> bool:
    out = cluster.kubectl("get", "va", AGENT, "-n", NAMESPACE, "-o", "json")
    conditions = json.loads(out).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def print_summary(parts: list[Part], state: Path, ports: Ports, real_node: bool) -> None:
    say("")
    say("voicefleet demo is running:")
    for part in parts:
        health = "healthy" if part.healthy() else "NOT HEALTHY"
        say(f"  {part.name:<28} {health:<11} {part.where}")
    say("")
    say(f"Open http://127.0.0.1:{ports.frontend}/ and press Start to talk to the agent.")
    kubectl = f"KUBECONFIG={state / 'cluster' / 'kubeconfig'} kubectl"
    if real_node:
        say("Worker pods run on a real node. A call takes a session of a worker and the")
        say("autoscaler keeps a warm one ready: watch the pods follow the calls:")
        say(f"  {kubectl} get pods -n {NAMESPACE} -o wide -w")
    else:
        say("Worker pods are simulated by KWOK; one agent worker process serves calls.")
    say("Each call raises the sample VoiceAgent's demand and desired workers:")
    say(f"  {kubectl} get va -n {NAMESPACE} -w")
    say(f"Logs: {state}. Press Ctrl-C to stop.")


def wait_for_interrupt() -> None:
    stop: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda received, _frame: stop.append(received))
    while not stop:
        time.sleep(0.5)
    say(f"stopping ({signal.Signals(stop[0]).name}) ...")
