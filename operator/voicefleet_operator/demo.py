"""`voicefleet demo`: LiveKit, a local control plane, the operator and a sample VoiceAgent.

Everything runs as plain processes on loopback; worker pods are simulated by KWOK. State lives
under the voicefleet cache and is started fresh on every run. Ctrl-C stops every process.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from voicefleet_operator.crd import custom_resource_definition
from voicefleet_operator.local.cluster import LocalCluster
from voicefleet_operator.local.livekit import LiveKitServer
from voicefleet_operator.local.process import CACHE, ComponentError, Process, port_open

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "offline-demo.yaml"
LIVEKIT_PORT = 7880
OPERATOR_PORT = 8080


def say(message: str) -> None:
    print(message, flush=True)


@contextmanager
def timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    say(f"==> {what}")
    yield
    say(f"    {what}: {time.monotonic() - start:.1f}s")


def run_demo(state: Path = CACHE / "demo") -> int:
    for port, name in ((LIVEKIT_PORT, "livekit-server"), (OPERATOR_PORT, "the operator")):
        if port_open(port):
            say(f"port {port} is in use; stop what listens there so {name} can use it")
            return 1
    shutil.rmtree(state, ignore_errors=True)
    with ExitStack() as stack:
        try:
            parts = start_parts(state, stack)
        except (ComponentError, TimeoutError) as error:
            say(f"demo failed to start: {error}")
            return 1
        except KeyboardInterrupt:
            say("interrupted while starting; stopping what was started")
            return 130
        print_summary(parts, state)
        wait_for_interrupt()
    say("demo stopped: every process it started has exited")
    return 0


def start_parts(state: Path, stack: ExitStack) -> dict[str, str]:
    with timed("livekit-server (dev keys)"):
        livekit = LiveKitServer(
            state / "livekit", api_key="devkey", api_secret="secret-" * 5, port=LIVEKIT_PORT
        )
        stack.callback(livekit.stop)
        livekit.start()
    with timed("control plane: etcd, kube-apiserver, controller-manager, scheduler, KWOK"):
        cluster = LocalCluster(state / "cluster")
        stack.callback(cluster.stop)
        cluster.start()
    with timed("VoiceAgent CRD"):
        cluster.kubectl("apply", "-f", "-", input=json.dumps(custom_resource_definition()))
        cluster.kubectl(
            "wait", "--for=condition=Established", "crd/voiceagents.voicefleet.io", "--timeout=30s"
        )
    with timed("operator"):
        operator = start_operator(state, cluster)
        stack.callback(operator.stop)
    with timed("sample VoiceAgent voicefleet-demo"):
        apply_sample(cluster, livekit)
        wait_reconciled(cluster, operator)
    return {
        "livekit-server": f"{livekit.url} (api key devkey)",
        "kube-apiserver": f"{cluster.server} (KUBECONFIG={cluster.kubeconfig})",
        "operator": f"http://127.0.0.1:{OPERATOR_PORT}/metrics",
        "voiceagent": "voicefleet-demo/voicefleet-demo",
    }


def start_operator(state: Path, cluster: LocalCluster) -> Process:
    operator = Process(
        "voicefleet-operator",
        [
            sys.executable,
            "-m",
            "voicefleet_operator.main",
            f"--metrics-port={OPERATOR_PORT}",
            "--metrics-host=127.0.0.1",
        ],
        state / "operator.log",
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    ).start()
    operator.wait_until(lambda: port_open(OPERATOR_PORT), 30, "serving /healthz")
    return operator


def apply_sample(cluster: LocalCluster, livekit: LiveKitServer) -> None:
    sample = yaml.safe_load(EXAMPLE.read_text())
    namespace = sample["metadata"]["namespace"]
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "livekit-local",
        "-n",
        namespace,
        f"--from-literal=api-key={livekit.api_key}",
        f"--from-literal=api-secret={livekit.api_secret}",
    )
    cluster.kubectl("apply", "-f", str(EXAMPLE))


def wait_reconciled(cluster: LocalCluster, operator: Process) -> None:
    def ready() -> bool:
        out = cluster.kubectl("get", "va", "voicefleet-demo", "-n", "voicefleet-demo", "-o", "json")
        conditions = json.loads(out).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    operator.wait_until(ready, 60, "done reconciling the sample VoiceAgent")


def print_summary(parts: dict[str, str], state: Path) -> None:
    say("")
    say("voicefleet demo is running (worker pods are simulated by KWOK):")
    for name, where in parts.items():
        say(f"  {name:<16} healthy  {where}")
    say(f"  logs: {state}")
    say(f"  try:  KUBECONFIG={state / 'cluster' / 'kubeconfig'} kubectl get va,deploy,pods -A")
    say("Press Ctrl-C to stop.")


def wait_for_interrupt() -> None:
    stop: list[int] = []
    handler: Callable[[int, object], None] = lambda signum, _frame: stop.append(signum)  # noqa: E731
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop:
        time.sleep(0.5)
    say(f"stopping ({signal.Signals(stop[0]).name}) ...")
