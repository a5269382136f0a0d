"""The fleet as a platform team runs it, on a real node: `helm install` with the built images,
the operator in-cluster under the chart's RBAC, an offline VoiceAgent whose worker pods
register with livekit-server and answer real callers, and replicas that follow the calls."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from livekit import api
from livekit.protocol.models import ParticipantInfo

from voicefleet_agent.loadtest import Caller, utterance_pcm
from voicefleet_agent.resume import RESUME_LINE
from voicefleet_devstack.cluster import LocalCluster
from voicefleet_devstack.images import Image, build_example
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.node import RealNode
from voicefleet_models.room import POD_ATTRIBUTE
from voicefleet_operator.chart import CHART, helm

from ..agent.test_custom_agent import CLINIC as EXAMPLE
from ..agent.test_custom_agent import greeted_then_offered_slots, heard_reliably
from ..helpers import eventually

NS = "vf-real"
RELEASE = "vf-real"
AGENT = "real-agent"
SECRET = "livekit-node"
ANSWER_TIMEOUT = 30.0
SILENCE_LIMIT_SECONDS = 3600

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(
    real_cluster: LocalCluster, real_node: RealNode, images: dict[str, Image]
) -> Iterator[LocalCluster]:
    """The chart installed in a namespace that enforces the restricted Pod Security Standard."""
    cluster = real_cluster
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("label", "namespace", NS, "pod-security.kubernetes.io/enforce=restricted")
    helm(
        "install", RELEASE, str(CHART), f"--namespace={NS}", "--wait", "--timeout=180s",
        f"--set=image.tag={images['operator'].tag}",
        "--set=rbac.namespaced=true", f"--set=watchNamespaces={{{NS}}}",
        kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    try:
        yield cluster
    finally:
        helm("uninstall", RELEASE, f"--namespace={NS}", "--wait", "--timeout=120s",
             kubeconfig=cluster.kubeconfig)  # fmt: skip


def pods(cluster: LocalCluster, selector: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", NS, "-l", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    deleting = "deletionTimestamp" in pod["metadata"]
    return conditions.get("Ready") == "True" and not deleting


def ready_pods(cluster: LocalCluster, selector: str) -> list[dict[str, Any]]:
    return [p for p in pods(cluster, selector) if ready(p)]


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_the_chart_runs_the_operator_in_cluster(
    fleet: LocalCluster, real_node: RealNode, images: dict[str, Image]
) -> None:
    # The chart's two replicas: one holds the leader Lease, the other stands by.
    operators = ready_pods(fleet, f"app.kubernetes.io/instance={RELEASE}")
    assert len(operators) == 2, [p["metadata"]["name"] for p in operators]
    names = {p["metadata"]["name"] for p in operators}
    lease = json.loads(fleet.kubectl("get", "lease", f"{RELEASE}-operator", "-n", NS, "-o", "json"))
    assert lease["spec"]["holderIdentity"].rsplit("_", 1)[0] in names, lease["spec"]
    for pod in operators:
        assert pod["spec"]["nodeName"] == real_node.name
        assert pod["spec"]["containers"][0]["image"] == images["operator"].reference
        # Served from the pod's own network namespace on the node's bridge.
        assert pod["status"]["podIP"].startswith(real_node.network.prefix + ".")
        assert http_get(f"http://{pod['status']['podIP']}:8080/healthz").strip() == "ok"
        # The image's user, as the chart's restricted securityContext requires, with a
        # read-only root filesystem.
        name = pod["metadata"]["name"]
        assert fleet.kubectl("exec", "-n", NS, name, "--", "id", "-u").strip() == "65532"
        touch = fleet.kubectl("exec", "-n", NS, name, "--", "touch", "/x", check=False)
        assert "Read-only file system" in touch
        # In-cluster config and the chart's RBAC: the operator watches its namespace and
        # holds or watches its Lease, refused nothing.
        logs = fleet.kubectl("logs", "-n", NS, name)
        assert "Forbidden" not in logs, logs[-2000:]
        assert "403" not in logs, logs[-2000:]


def test_the_kubelet_api_refuses_requests_without_credentials(real_node: RealNode) -> None:
    """The node's one listener of its own: only the API server's client certificate (and users
    RBAC allows) get past it; anything else on the node's address is refused."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the kubelet's serving certificate is self-signed
    url = f"https://{real_node.address}:{real_node.kubelet_port}/pods"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5, context=context)
    assert refused.value.code == 401


def voice_agent(
    server: LiveKitServer, image: Image, name: str = AGENT, max_replicas: int = 3, **scaling: int
) -> dict[str, Any]:
    return {
        "apiVersion": "voicefleet.io/v1alpha1",
        "kind": "VoiceAgent",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "image": image.reference,
            "instructions": "Answer in one short sentence.",
            "pipeline": {
                "stt": [{"provider": "offline", "model": "en-us"}],
                "llm": [{"provider": "offline", "model": "echo"}],
                "tts": [{"provider": "offline", "model": "en-us"}],
            },
            "regions": [
                {
                    "name": "node",
                    "livekit": {"url": server.url, "credentialsSecret": SECRET},
                    "minReplicas": 1,
                    "maxReplicas": max_replicas,
                }
            ],
            "scaling": {
                "sessionsPerWorker": 1,
                "warmWorkers": 1,
                "headroomPercent": 0,
                "pollIntervalSeconds": 1,
                "scaleDownStabilizationSeconds": 5,
                **scaling,
            },
            "drainTimeoutSeconds": 60,
            # The tests leave calls silent for minutes while the fleet changes around them:
            # the silence limit (60 s by default) would end them by design.
            "call": {"silenceTimeoutSeconds": SILENCE_LIMIT_SECONDS},
            # Two cores host the node, the callers and livekit-server: small requests so that
            # three workers fit.
            "resources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"memory": "1Gi"},
            },
        },
    }


@pytest.fixture(scope="module")
def agent_fleet(
    fleet: LocalCluster, node_livekit: LiveKitServer, images: dict[str, Image]
) -> Iterator[LocalCluster]:
    fleet.kubectl(
        "create", "secret", "generic", SECRET, "-n", NS,
        f"--from-literal=api-key={node_livekit.api_key}",
        f"--from-literal=api-secret={node_livekit.api_secret}",
    )  # fmt: skip
    manifest = voice_agent(node_livekit, images["agent"])
    fleet.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        yield fleet
    finally:
        fleet.kubectl("delete", "voiceagent", AGENT, "-n", NS, "--wait=false", check=False)


WORKERS = f"voicefleet.io/agent={AGENT}"


def active_sessions(pod: dict[str, Any]) -> int:
    """The worker's own count of sessions in progress, read from its /metrics."""
    text = http_get(f"http://{pod['status']['podIP']}:9100/metrics")
    lines = [line for line in text.splitlines() if line.startswith("voicefleet_agent_active_")]
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines))


class Call:
    """A caller in its own room, dispatching the agent by name, speaking prepared audio."""

    def __init__(self, server: LiveKitServer, room: str, agent: str = AGENT) -> None:
        self.server = server
        self.room = room
        self.agent = agent
        self.caller = Caller()

    async def __aenter__(self) -> Call:
        token = (
            api.AccessToken(self.server.api_key, self.server.api_secret)
            .with_identity(f"caller-{self.room}")
            .with_grants(api.VideoGrants(room_join=True, room=self.room))
            .with_room_config(
                api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=self.agent)])
            )
            .to_jwt()
        )
        await self.caller.join(self.server.url, token)
        await self.caller.wait_for_agent(ANSWER_TIMEOUT)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.caller.leave()

    async def answered(self, text: str = "hello, how are you today") -> float:
        """Speak once; seconds until the agent is heard answering."""
        await self.caller.wait_agent_silent(0.8, ANSWER_TIMEOUT)
        ended = await self.caller.speak(utterance_pcm(text))
        heard = await self.caller.wait_audible_after(ended, ANSWER_TIMEOUT)
        return heard - ended


@pytest.fixture
async def calls(node_livekit: LiveKitServer) -> AsyncIterator[list[Call]]:
    opened: list[Call] = []
    yield opened
    await asyncio.gather(*(call.__aexit__() for call in opened), return_exceptions=True)


async def test_worker_pods_answer_real_callers(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, real_node: RealNode
) -> None:
    (worker,) = eventually(lambda: ready_pods(agent_fleet, WORKERS), timeout=120)
    assert worker["spec"]["nodeName"] == real_node.name
    # The restricted settings are in force: non-root, read-only root, no capabilities. The
    # offline voice (espeak-ng), the metrics directory and HOME live on the pod's /tmp.
    name = worker["metadata"]["name"]
    run = ["exec", "-n", NS, name, "--"]
    assert agent_fleet.kubectl(*run, "id", "-u").strip() == "65532"
    assert "Read-only file system" in agent_fleet.kubectl(*run, "touch", "/x", check=False)
    status = agent_fleet.kubectl(*run, "grep", "^CapEff", "/proc/1/status")
    assert status.split()[1] == "0000000000000000", status
    async with Call(node_livekit, "real-answer") as call:
        latency = await call.answered()
        assert 0 < latency < ANSWER_TIMEOUT
        # The worker refreshes its gauge with the load it reports to LiveKit, each second.
        eventually(lambda: active_sessions(worker) == 1, timeout=10)
        finals = [t for t in call.caller.transcripts if t.final and t.identity != "caller"]
        assert finals, "the agent published no final transcript"
        # Busy, from its real load: node autoscalers must leave it alone.
        eventually(lambda: busy_marks(agent_fleet, name) == ("1", "false", "true"), timeout=15)
    eventually(lambda: active_sessions(worker) == 0, timeout=30)
    eventually(lambda: busy_marks(agent_fleet, name) == ("0", None, None), timeout=15)


async def test_a_job_process_killed_in_a_pod_is_replaced_and_the_caller_greeted_back(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, real_node: RealNode
) -> None:
    """The kernel's OOM killer takes one call's job process inside a worker pod: the worker
    puts the call back at once, and the caller hears an agent again within seconds."""
    eventually(lambda: settled(agent_fleet, 1), timeout=180)
    async with Call(node_livekit, "real-recover") as call:
        await call.answered()
        await call.caller.wait_agent_silent(0.8, ANSWER_TIMEOUT)
        lost = call.caller.agent_identity
        load = wait_for_load(agent_fleet, [0, 1])
        (busy,) = [name for name, sessions in load.items() if sessions == 1]
        media_process(agent_fleet, real_node, busy).kill()
        killed = time.time()
        heard = await call.caller.wait_audible_after(killed, 10)
        print(f"job process killed in {busy} → the new agent heard after {heard - killed:.1f}s")
        assert call.caller.agent_identity not in (lost, None)
        await asyncio.to_thread(eventually, lambda: greeted_back(call), 20)
        await call.answered("can you still hear me")


# Well under livekit-server's ~21 s connection timeout, after which its webhook would have
# brought an agent back anyway: only the pod-side detection gets the call back this soon.
WORKER_BACK_WITHIN = 8.0


async def test_a_worker_container_killed_in_a_pod_is_noticed_and_the_caller_greeted_back(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, real_node: RealNode
) -> None:
    """The whole worker dies (its container's main process is killed, its job processes with
    it): the operator sees the container die in the pod's status, removes the dead agent from
    the room and dispatches it again; the warm worker takes the call and greets the caller."""
    eventually(lambda: settled(agent_fleet, 1), timeout=180)
    async with Call(node_livekit, "real-worker-lost") as call:
        await call.answered()
        await call.caller.wait_agent_silent(0.8, ANSWER_TIMEOUT)
        lost = call.caller.agent_identity
        load = wait_for_load(agent_fleet, [0, 1])
        (busy,) = [name for name, sessions in load.items() if sessions == 1]
        # The job named its pod beside the framework's own attributes, which it kept.
        attributes = await agent_attributes(node_livekit, "real-worker-lost")
        assert attributes.get(POD_ATTRIBUTE) == busy, attributes
        assert "lk.agent.state" in attributes, attributes
        status = container_status(agent_fleet, busy)
        psutil.Process(real_node.container_pid(status["containerID"])).kill()
        killed = time.time()
        heard = await call.caller.wait_audible_after(killed, WORKER_BACK_WITHIN)
        print(
            f"worker container of {busy} killed → the new agent heard after {heard - killed:.1f}s"
        )
        assert call.caller.agent_identity not in (lost, None)
        await asyncio.to_thread(eventually, lambda: greeted_back(call), 20)
        await call.answered("can you still hear me")
    # The same pod restarted its container (restartPolicy Always); the fleet settles back to
    # its warm worker alone before the next test places calls.
    restarts = status["restartCount"]
    eventually(lambda: container_status(agent_fleet, busy)["restartCount"] > restarts, 60)
    eventually(lambda: settled(agent_fleet, 1), timeout=180)


async def agent_attributes(server: LiveKitServer, room: str) -> dict[str, str]:
    """The attributes of the room's agent participant, as LiveKit lists them."""
    async with api.LiveKitAPI(server.http_url, server.api_key, server.api_secret) as lk:
        listing = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    (agent,) = [p for p in listing.participants if p.kind == ParticipantInfo.Kind.AGENT]
    return dict(agent.attributes)


def container_status(cluster: LocalCluster, pod: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", pod, "-n", NS, "-o", "json")
    (status,) = json.loads(out)["status"]["containerStatuses"]
    found: dict[str, Any] = status
    return found


def greeted_back(call: Call) -> bool:
    """The new agent's first words: the call goes on, it does not start over."""
    agent = call.caller.agent_identity
    return any(RESUME_LINE in t.text for t in call.caller.transcripts if t.identity == agent)


def media_process(cluster: LocalCluster, node: RealNode, pod: str) -> psutil.Process:
    """The process of `pod` that holds a call's media: the one with a UDP socket among its
    worker container's processes, seen from the node."""
    out = cluster.kubectl("get", "pod", pod, "-n", NS, "-o", "json")
    (status,) = json.loads(out)["status"]["containerStatuses"]
    worker = psutil.Process(node.container_pid(status["containerID"]))
    found = [p for p in worker.children(recursive=True) if holds_udp(p.pid)]
    assert len(found) == 1, f"{len(found)} processes of {pod} hold media"
    return found[0]


def holds_udp(pid: int) -> bool:
    """Whether the process has a UDP socket open, read in its own network namespace (psutil
    reads the caller's, where a pod's sockets do not show)."""
    proc = Path(f"/proc/{pid}")
    try:
        tables = [(proc / "net" / name).read_text() for name in ("udp", "udp6")]
        links = [str(fd.readlink()) for fd in (proc / "fd").iterdir()]
    except OSError:
        return False
    udp = {line.split()[9] for table in tables for line in table.splitlines()[1:]}
    return any(link.removeprefix("socket:[").rstrip("]") in udp for link in links)


def busy_marks(cluster: LocalCluster, pod: str) -> tuple[str | None, ...]:
    """The pod's deletion cost, cluster-autoscaler and Karpenter annotations."""
    out = cluster.kubectl("get", "pod", pod, "-n", NS, "-o", "json")
    annotations = json.loads(out)["metadata"].get("annotations", {})
    keys = (
        "controller.kubernetes.io/pod-deletion-cost",
        "cluster-autoscaler.kubernetes.io/safe-to-evict",
        "karpenter.sh/do-not-disrupt",
    )
    return tuple(annotations.get(key) for key in keys)


def replicas(cluster: LocalCluster, agent: str = AGENT) -> int:
    out = cluster.kubectl("get", "deployment", f"{agent}-node", "-n", NS, "-o", "json")
    return int(json.loads(out)["spec"]["replicas"])


async def test_callers_add_real_workers_and_idle_ones_go_first(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, calls: list[Call]
) -> None:
    """One session per worker and one warm worker: each call lands on a ready worker while
    the next pod starts; when a caller hangs up, an idle worker is removed, never a busy one."""
    eventually(lambda: settled(agent_fleet, 1), timeout=120)
    for index in (1, 2):
        eventually(lambda n=index: len(ready_pods(agent_fleet, WORKERS)) == n, timeout=120)
        call = Call(node_livekit, f"real-scale-{index}")
        calls.append(await call.__aenter__())
        await call.answered()
    eventually(lambda: replicas(agent_fleet) == 3, timeout=30)
    # Two workers with a call each, the third warm.
    load = wait_for_load(agent_fleet, [0, 1, 1])

    first, second = calls
    await first.__aexit__()
    calls.remove(first)
    # Its worker reports no session any more: two idle workers, one busy.
    idle = eventually(lambda: exactly(2, idle_pods(agent_fleet)), timeout=30)
    eventually(lambda: replicas(agent_fleet) == 2, timeout=60)
    remaining = eventually(lambda: exactly(2, pod_names(agent_fleet)), timeout=120)
    busy = next(name for name, sessions in load.items() if sessions == 1 and name not in idle)
    assert busy in remaining, (busy, remaining)
    # The call on the busy worker goes on, answered after the scale-down.
    await second.answered("are you still there")


def settled(cluster: LocalCluster, count: int, selector: str = WORKERS) -> bool:
    """Exactly `count` workers, all ready and none terminating. A worker told to stop a moment
    ago may still take an offered job before its drain begins (and keeps that call until it
    ends), so tests place calls on a settled fleet."""
    workers = pods(cluster, selector)
    return len(workers) == count and all(ready(p) for p in workers)


def exactly(count: int, names: set[str]) -> set[str] | None:
    return names if len(names) == count else None


def pod_names(cluster: LocalCluster) -> set[str]:
    """Every worker pod, terminating ones included."""
    return {p["metadata"]["name"] for p in pods(cluster, WORKERS)}


def wait_for_load(
    cluster: LocalCluster, pattern: list[int], timeout: float = 120
) -> dict[str, int]:
    """Sessions per ready worker once, sorted, they are `pattern`; on failure, what each
    worker (ready or not) last showed."""

    def matches() -> dict[str, int] | None:
        load = sessions_by_pod(cluster, count=len(pattern))
        return load if load is not None and sorted(load.values()) == pattern else None

    try:
        load: dict[str, int] = eventually(matches, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; workers: {describe_workers(cluster)}") from None
    return load


def describe_workers(cluster: LocalCluster, selector: str = WORKERS) -> list[str]:
    described = []
    for pod in pods(cluster, selector):
        name, state = pod["metadata"]["name"], pod["status"].get("phase")
        if "deletionTimestamp" in pod["metadata"]:
            state = "terminating"
        try:
            sessions: int | str = active_sessions(pod)
        except OSError as error:
            sessions = str(error)
        described.append(f"{name} {state} ready={ready(pod)} sessions={sessions}")
    return described


def idle_pods(cluster: LocalCluster) -> set[str]:
    load = sessions_by_pod(cluster, count=3) or {}
    return {name for name, sessions in load.items() if sessions == 0}


def sessions_by_pod(cluster: LocalCluster, count: int) -> dict[str, int] | None:
    """Active sessions of each ready worker, once exactly `count` are ready."""
    workers = ready_pods(cluster, WORKERS)
    if len(workers) != count:
        return None
    return {p["metadata"]["name"]: active_sessions(p) for p in workers}


def worker_config(cluster: LocalCluster, pod: str) -> dict[str, Any]:
    """The configuration file a worker pod reads (and forks its job processes with)."""
    out = cluster.kubectl("exec", "-n", NS, pod, "--", "cat", "/etc/voicefleet/agent.json")
    config: dict[str, Any] = json.loads(out)
    return config


async def test_a_change_rolls_new_workers_while_a_busy_one_keeps_its_config_and_call(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, calls: list[Call]
) -> None:
    eventually(lambda: settled(agent_fleet, 1), timeout=180)
    call = Call(node_livekit, "real-rollout")
    calls.append(await call.__aenter__())
    await call.answered()
    load = wait_for_load(agent_fleet, [0, 1])
    (busy,) = [name for name, sessions in load.items() if sessions == 1]
    before = worker_config(agent_fleet, busy)

    agent_fleet.kubectl(
        "patch", "voiceagent", AGENT, "-n", NS, "--type=merge",
        "-p", json.dumps({"spec": {"instructions": "Answer in five words."}}),
    )  # fmt: skip
    # New workers with the new configuration replace the old ones; the busy one drains.
    new = eventually(
        lambda: (
            [
                p["metadata"]["name"]
                for p in ready_pods(agent_fleet, WORKERS)
                if p["metadata"]["name"] not in load
            ]
            or None
        ),
        timeout=120,
    )
    assert worker_config(agent_fleet, new[0])["instructions"] == "Answer in five words."
    eventually(lambda: draining(agent_fleet, busy), timeout=60)
    # The draining worker still runs what it started with, and its call goes on.
    assert worker_config(agent_fleet, busy) == before
    await call.answered("is the call still on")
    await call.__aexit__()
    calls.remove(call)
    # With its last call over, the drained worker exits long before its grace period.
    eventually(lambda: busy not in pod_names(agent_fleet), timeout=60)


def draining(cluster: LocalCluster, name: str) -> bool:
    return any(
        p["metadata"]["name"] == name and "deletionTimestamp" in p["metadata"]
        for p in pods(cluster, WORKERS)
    )


# Disruptions with a crowd on the fleet: six calls or more stay active through each event,
# and every one of them is answered again after it.
CROWD = "crowd-agent"
CROWD_WORKERS = f"voicefleet.io/agent={CROWD}"
SESSIONS_PER_WORKER = 3
CROWD_DRAIN_SECONDS = 600


@pytest.fixture(scope="module")
def crowd_fleet(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, images: dict[str, Image]
) -> Iterator[LocalCluster]:
    """A second VoiceAgent, three sessions per worker and one warm worker. Its providers are
    the scripted ones: two cores could not run six calls' offline speech recognition on top of
    the node, livekit-server and the callers."""
    manifest = voice_agent(
        node_livekit, images["agent"], name=CROWD, max_replicas=4,
        sessionsPerWorker=SESSIONS_PER_WORKER,
    )  # fmt: skip
    scripted = [{"provider": "simulated", "simulation": {"delaySeconds": 0.2}}]
    manifest["spec"]["pipeline"] = {"stt": scripted, "llm": scripted, "tts": scripted}
    # A drained worker keeps its calls this long: longer than any test here takes to ask all
    # six calls again, so a call that goes silent was cut, not timed out by design.
    manifest["spec"]["drainTimeoutSeconds"] = CROWD_DRAIN_SECONDS
    agent_fleet.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        yield agent_fleet
    finally:
        agent_fleet.kubectl("delete", "voiceagent", CROWD, "-n", NS, "--wait=false", check=False)


async def until(cluster: LocalCluster, check: Callable[[], Any], within: float = 30) -> Any:
    """`eventually`, off the event loop: the callers' rooms keep running meanwhile. A failure
    shows the crowd's workers and what the operator saw."""
    try:
        return await asyncio.to_thread(eventually, check, within)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{await asyncio.to_thread(crowd_state, cluster)}") from None


def crowd_state(cluster: LocalCluster) -> str:
    """The crowd's workers (ready or not, with their sessions) and its VoiceAgent's status."""
    workers = describe_workers(cluster, CROWD_WORKERS)
    out = cluster.kubectl("get", "voiceagent", CROWD, "-n", NS, "-o", "json", check=False)
    try:
        status = json.loads(out).get("status", {})
    except ValueError:
        status = out
    return f"workers: {workers}\nstatus: {json.dumps(status)}"


def crowd_load(cluster: LocalCluster) -> int:
    return sum(active_sessions(p) for p in ready_pods(cluster, CROWD_WORKERS))


async def open_crowd(cluster: LocalCluster, server: LiveKitServer, name: str, count: int,
                     calls: list[Call]) -> list[Call]:  # fmt: skip
    """`count` answered calls, each placed once the fleet has a free session for it (a
    self-hosted LiveKit offers a call's job once: a call beyond capacity gets no agent)."""
    opened = []
    for index in range(count):
        await until(
            cluster, lambda n=index: free_sessions(cluster) > 0 and crowd_load(cluster) == n, 120
        )
        call = await place(server, f"{name}-{index}")
        calls.append(call)
        opened.append(call)
    for call in opened:
        await call.answered()
    return opened


async def place(server: LiveKitServer, room: str) -> Call:
    """A call the crowd's agent joined. livekit-server gives a worker 3 s to accept a job and
    offers it once: a worker on two saturated cores can miss that, and the call then gets no
    agent. Such a call is placed again in a new room, and reported; the calls under test are
    the ones placed."""
    for attempt in (room, f"{room}-again"):
        call = Call(server, attempt, agent=CROWD)
        try:
            return await call.__aenter__()
        except TimeoutError:
            await call.__aexit__()
            print(f"{attempt}: no agent joined within {ANSWER_TIMEOUT:.0f}s")
    raise AssertionError(f"{room}: placed twice, no agent joined")


def free_sessions(cluster: LocalCluster) -> int:
    workers = ready_pods(cluster, CROWD_WORKERS)
    return len(workers) * SESSIONS_PER_WORKER - sum(active_sessions(p) for p in workers)


async def all_still_answered(crowd: list[Call]) -> None:
    """Calls cut = 0: in every room the agent that took the call is still there, and answers
    again. A cut call never answers, so an ask that got no answer within ANSWER_TIMEOUT (two
    cores running the node, six calls and the callers can starve one) is asked once more and
    reported."""
    asked = time.monotonic()
    for call in crowd:
        agent = call.caller.agent_identity
        assert call.caller.room.isconnected(), (
            f"{call.room}: caller disconnected; {last_words(call)}"
        )
        assert agent in call.caller.room.remote_participants, (
            f"{call.room}: agent {agent} left; {last_words(call)}"
        )
        try:
            await call.answered("are you still with me")
        except TimeoutError as first:
            waited = time.monotonic() - asked
            print(f"{call.room}: no answer to the first ask ({first}, {waited:.0f}s in)")
            try:
                await call.answered("hello, are you there")
            except TimeoutError as error:
                raise AssertionError(f"{call.room} cut: {error} twice ({waited:.0f}s after the "
                                     f"first ask, agent {agent}); {last_words(call)}"
                                     ) from None  # fmt: skip


def last_words(call: Call) -> str:
    """What the agent said last: its goodbye when a call limit ended the call."""
    said = [t.text for t in call.caller.transcripts if t.final and t.identity != "caller"]
    return f"the agent's last words: {said[-1]!r}" if said else "the agent said nothing"


async def hang_up(crowd: list[Call], calls: list[Call]) -> None:
    """Each caller hangs up once the agent has finished speaking, as people do. (A caller
    leaving mid-reply can leave the framework's session close hanging, and its drained worker
    with it, until the drain timeout: livekit/agents issue 5497.)"""
    for call in crowd:
        await call.caller.wait_agent_silent(0.8, ANSWER_TIMEOUT)
        await call.__aexit__()
        calls.remove(call)


async def test_six_calls_survive_a_scale_down(
    crowd_fleet: LocalCluster, node_livekit: LiveKitServer, calls: list[Call]
) -> None:
    """Six calls fill two workers' sessions, with a warm worker beside them; without the warm
    worker the fleet shrinks to two while all six calls go on (idle workers go first, and a
    worker removed with calls keeps them while it drains)."""
    await until(crowd_fleet, lambda: settled(crowd_fleet, 1, CROWD_WORKERS), within=180)
    crowd = await open_crowd(crowd_fleet, node_livekit, "down", 6, calls)
    await until(crowd_fleet, lambda: settled(crowd_fleet, 3, CROWD_WORKERS), within=120)
    set_warm_workers(crowd_fleet, 0)
    try:
        await until(crowd_fleet, lambda: replicas(crowd_fleet, CROWD) == 2, within=60)
        await until(crowd_fleet, lambda: len(ready_pods(crowd_fleet, CROWD_WORKERS)) == 2, 60)
        await all_still_answered(crowd)
    finally:
        set_warm_workers(crowd_fleet, 1)
    await hang_up(crowd, calls)


def set_warm_workers(cluster: LocalCluster, count: int) -> None:
    patch = {"spec": {"scaling": {"warmWorkers": count}}}
    cluster.kubectl("patch", "voiceagent", CROWD, "-n", NS, "--type=merge",
                    "-p", json.dumps(patch))  # fmt: skip


async def test_six_calls_survive_a_rolling_update(
    crowd_fleet: LocalCluster, node_livekit: LiveKitServer, calls: list[Call]
) -> None:
    await until(crowd_fleet, lambda: settled(crowd_fleet, 1, CROWD_WORKERS), within=180)
    crowd = await open_crowd(crowd_fleet, node_livekit, "roll", 6, calls)
    await until(crowd_fleet, lambda: settled(crowd_fleet, 3, CROWD_WORKERS), within=120)
    before = {p["metadata"]["name"] for p in pods(crowd_fleet, CROWD_WORKERS)}
    crowd_fleet.kubectl(
        "patch", "voiceagent", CROWD, "-n", NS, "--type=merge",
        "-p", json.dumps({"spec": {"instructions": "Answer briefly."}}),
    )  # fmt: skip
    # Three new workers ready; the old ones drain with their calls.
    await until(crowd_fleet, lambda: replaced(crowd_fleet, before, 3), within=180)
    await all_still_answered(crowd)
    await hang_up(crowd, calls)
    await until(
        crowd_fleet, lambda: before.isdisjoint(pod_names_of(crowd_fleet, CROWD_WORKERS)), within=90
    )


async def test_six_calls_survive_evictions_that_honour_the_budget(
    crowd_fleet: LocalCluster, node_livekit: LiveKitServer, calls: list[Call]
) -> None:
    """Every worker evicted through the Eviction API, as a node drain does: the
    PodDisruptionBudget lets one go at a time, and evicted workers drain with their calls."""
    await until(crowd_fleet, lambda: settled(crowd_fleet, 1, CROWD_WORKERS), within=180)
    crowd = await open_crowd(crowd_fleet, node_livekit, "evict", 6, calls)
    await until(crowd_fleet, lambda: settled(crowd_fleet, 3, CROWD_WORKERS), within=120)
    targets = sorted(pod_names_of(crowd_fleet, CROWD_WORKERS))
    refused = 0
    for name in targets:
        refused += await asyncio.to_thread(evict_when_allowed, crowd_fleet, name)
    # Evicting three workers of a region at once would break its budget of one.
    assert refused > 0
    await all_still_answered(crowd)
    await hang_up(crowd, calls)
    await until(
        crowd_fleet, lambda: set(targets).isdisjoint(pod_names_of(crowd_fleet, CROWD_WORKERS)), 90
    )


def replaced(cluster: LocalCluster, old: set[str], count: int) -> bool:
    ready_names = {p["metadata"]["name"] for p in ready_pods(cluster, CROWD_WORKERS)}
    return len(ready_names) == count and ready_names.isdisjoint(old)


def pod_names_of(cluster: LocalCluster, selector: str) -> set[str]:
    return {p["metadata"]["name"] for p in pods(cluster, selector)}


def evict_when_allowed(cluster: LocalCluster, pod: str, timeout: float = 120) -> int:
    """Evict `pod` through the Eviction API, retrying while its PodDisruptionBudget allows no
    disruption (429), as `kubectl drain` does; the number of refusals."""
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": pod, "namespace": NS}}  # fmt: skip
    deadline = time.monotonic() + timeout
    refusals = 0
    while True:
        out = cluster.kubectl(
            "create", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod}/eviction", "-f", "-",
            input=json.dumps(eviction), check=False,
        )  # fmt: skip
        if '"status":"Success"' in out.replace(" ", ""):
            return refusals
        assert "TooManyRequests" in out, out
        assert "disruption budget" in out, out
        assert time.monotonic() < deadline, f"{pod} was not evicted within {timeout}s"
        refusals += 1
        time.sleep(0.5)


# Your own agent in your own image: examples/clinic built FROM the agent image, as its
# Dockerfile says, and run by the chart's operator like any VoiceAgent.
CLINIC = "clinic"


@pytest.fixture(scope="module")
def clinic_image(real_node: RealNode, images: dict[str, Image]) -> Image:
    image = build_example(CLINIC, images["agent"])
    real_node.load(image.archive)
    return image


def clinic_agent(server: LiveKitServer, image: Image) -> dict[str, Any]:
    """examples/clinic/voiceagent.yaml, pointed at this namespace, LiveKit and image."""
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLE / "voiceagent.yaml").read_text())
    manifest["metadata"]["namespace"] = NS
    region = {"name": "node", "livekit": {"url": server.url, "credentialsSecret": SECRET}}
    settings = voice_agent(server, image)["spec"]
    manifest["spec"] |= {
        "image": image.reference,
        "regions": [{**region, "minReplicas": 1, "maxReplicas": 1}],
        "resources": settings["resources"],
        "call": settings["call"],
    }
    heard_reliably(manifest["spec"]["pipeline"])
    return manifest


async def test_the_clinic_image_runs_its_own_agent_code_on_the_node(
    agent_fleet: LocalCluster, node_livekit: LiveKitServer, clinic_image: Image
) -> None:
    agent_fleet.kubectl(
        "apply", "-f", "-", input=json.dumps(clinic_agent(node_livekit, clinic_image))
    )
    try:
        selector = f"voicefleet.io/agent={CLINIC}"
        (worker,) = eventually(lambda: ready_pods(agent_fleet, selector), timeout=180)
        assert worker["spec"]["containers"][0]["image"] == clinic_image.reference
        async with Call(node_livekit, "real-clinic", agent=CLINIC) as call:
            await greeted_then_offered_slots(call.caller)
    finally:
        agent_fleet.kubectl("delete", "voiceagent", CLINIC, "-n", NS, "--wait=false", check=False)
