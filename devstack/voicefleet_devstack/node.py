"""A real Kubernetes node on this machine: kubelet, containerd and runc, pods on a CNI bridge.

Everything a pod can reach stays on this machine. Pods live in network namespaces on a bridge
whose gateway address the machine owns (also the node's IP, where livekit-server listens for
them); IP forwarding is left off and a FORWARD rule drops anything from the pod range that is
not for the pod range, so no pod packet is ever routed elsewhere. The `kubernetes` Service's
cluster IP is the one Service routed (a single DNAT rule, as kube-proxy would write it): the
operator runs in-cluster with its ServiceAccount exactly as on a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from voicefleet_devstack.cluster import KUBELET_CLIENT, REAL_NODE, LocalCluster
from voicefleet_devstack.process import ComponentError, Process, binary, free_port

CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
SYSTEM_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip")
API_SERVICE = ("10.96.0.1", 443)  # the first address of the cluster's service range


@dataclass(frozen=True)
class NodeNetwork:
    """The bridge and rules of one node; `address` is the node's IP and the pods' gateway."""

    bridge: str = "voicefleet0"
    prefix: str = "10.232.0"

    @property
    def address(self) -> str:
        return f"{self.prefix}.1"

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0/24"

    def rules(self, api_port: int) -> list[list[str]]:
        """iptables rules (table, chain, match...) this network adds and later removes."""
        service, port = API_SERVICE
        return [
            ["nat", "PREROUTING", "-s", self.subnet, "-d", service, "-p", "tcp",
             "--dport", str(port), "-j", "DNAT", "--to-destination", f"127.0.0.1:{api_port}"],
            ["filter", "FORWARD", "-s", self.subnet, "!", "-d", self.subnet, "-j", "DROP"],
        ]  # fmt: skip

    def up(self, api_port: int) -> None:
        self.down(api_port)
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        # The API server listens on loopback; the DNAT above reaches it from the bridge.
        Path(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet").write_text("1")
        for table, chain, *rule in self.rules(api_port):
            _iptables(table, "-A", chain, *rule)

    def down(self, api_port: int) -> None:
        for table, chain, *rule in self.rules(api_port):
            while _iptables(table, "-D", chain, *rule, check=False) == 0:
                pass
        _ip("link", "del", self.bridge, check=False)

    def cni_config(self, data_dir: Path) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": "voicefleet",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    # The bridge and its address exist already (up()): the plugin neither
                    # assigns the gateway nor turns IP forwarding on.
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(data_dir),
                        "ranges": [
                            [
                                {
                                    "subnet": self.subnet,
                                    "rangeStart": f"{self.prefix}.10",
                                    "gateway": self.address,
                                }
                            ]
                        ],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                }
            ],
        }


@dataclass
class RealNode:
    """kubelet + containerd registered with `cluster` (one without KWOK nodes) as REAL_NODE;
    images come from OCI archives (no registry), so pods use imagePullPolicy IfNotPresent."""

    cluster: LocalCluster
    workdir: Path
    network: NodeNetwork = field(default_factory=NodeNetwork)
    processes: list[Process] = field(default_factory=list)
    kubelet_port: int = field(default_factory=free_port)  # its API, on the node's address

    @property
    def name(self) -> str:
        return REAL_NODE

    @property
    def address(self) -> str:
        return self.network.address

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    def start(self, sandbox_image: str, timeout: float = 120) -> RealNode:
        unavailable = why_unavailable(self.network)
        if unavailable:
            raise ComponentError(f"a real node cannot run here: {unavailable}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.network.up(self.cluster.api_port)
        self._start_containerd(sandbox_image, timeout)
        self._start_kubelet(timeout)
        return self

    def load(self, *archives: Path) -> None:
        """Import OCI image archives into the node's containerd (what a pull would fetch)."""
        for archive in archives:
            self._ctr("images", "import", "--all-platforms", str(archive))

    def container_pid(self, container_id: str) -> int:
        """The host PID of a container's first process (`containerd://<id>` or the bare id)."""
        task = container_id.removeprefix("containerd://")
        listing = subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", "tasks", "ls"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        for line in listing.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == task:
                return int(fields[1])
        raise ComponentError(f"no running task for container {task}")

    def stop(self) -> None:
        """Stop every container, then the kubelet and containerd, and undo the network."""
        kubelet = next((p for p in self.processes if p.name == "kubelet"), None)
        if kubelet and kubelet.running:
            self._remove_pods()
            kubelet.stop()
        self._kill_containers()
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        _kill_shims(self.socket)
        _unmount_below(self.workdir)
        _delete_unused_netns()
        self.network.down(self.cluster.api_port)

    # -- containerd ------------------------------------------------------------------------

    def _start_containerd(self, sandbox_image: str, timeout: float) -> None:
        root = self.workdir / "containerd"
        cni = self.workdir / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        (cni / "10-voicefleet.conflist").write_text(
            json.dumps(self.network.cni_config(self.workdir / "ipam"), indent=2)
        )
        config = root / "config.toml"
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(_containerd_config(root, self.socket, cni, sandbox_image))
        containerd = Process(
            "containerd", [shutil.which("containerd") or "containerd", f"--config={config}"],
            self.workdir / "logs" / "containerd.log",
        ).start()  # fmt: skip
        self.processes.append(containerd)
        containerd.wait_until(lambda: self._ctr("version", check=False) == 0, timeout)

    def _ctr(self, *args: str, check: bool = True) -> int:
        result = subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise ComponentError(f"ctr {' '.join(args[:2])}: {result.stderr.strip()}")
        return result.returncode

    def _remove_pods(self, timeout: float = 30) -> None:
        """Delete this node's pods at once and let the kubelet tear their sandboxes down (CNI
        included) while it still runs."""
        on_node = f"--field-selector=spec.nodeName={REAL_NODE}"
        self.cluster.kubectl("delete", "pods", "--all-namespaces", on_node, "--grace-period=0",
                             "--force", "--wait=false", check=False)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._tasks():
            time.sleep(0.5)

    def _tasks(self) -> list[str]:
        listing = subprocess.run(
            ["ctr", f"--address={self.socket}", "--namespace=k8s.io", "tasks", "list", "-q"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        return listing.stdout.split()

    def _kill_containers(self) -> None:
        for task in self._tasks():
            self._ctr("tasks", "kill", "--signal=SIGKILL", task, check=False)

    # -- kubelet ---------------------------------------------------------------------------

    def _start_kubelet(self, timeout: float) -> None:
        kubelet_dir = self.workdir / "kubelet"
        kubelet_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.workdir / "kubelet.kubeconfig"
        self.cluster.write_kubeconfig(
            kubeconfig, f"system:node:{REAL_NODE}", self.cluster.node_token
        )
        config = self.workdir / "kubelet.json"
        config.write_text(json.dumps(self._kubelet_config(), indent=2))
        kubelet = Process(
            "kubelet",
            [binary("kubelet"), f"--config={config}", f"--kubeconfig={kubeconfig}",
             f"--hostname-override={REAL_NODE}", f"--node-ip={self.address}",
             f"--root-dir={kubelet_dir}", f"--cert-dir={kubelet_dir / 'pki'}"],
            self.workdir / "logs" / "kubelet.log",
        ).start()  # fmt: skip
        self.processes.append(kubelet)
        kubelet.wait_until(self._ready, timeout, "Ready")

    def _kubelet_config(self) -> dict[str, object]:
        pki = self.cluster.workdir / "pki"
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # This machine has cgroup v1 (cgroup2 only beside it) and no systemd as PID 1.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "address": self.address,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzPort": 0,
            # Only the API server (its client certificate) and RBAC-allowed users reach the
            # kubelet's API.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / f"{KUBELET_CLIENT}-ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            # No cluster DNS, and pods get no resolver of the machine's either.
            "resolvConf": "",
            # A development machine's disk and memory are shared with everything else: no
            # evictions, no local-storage accounting (the root filesystem's usage is not ours).
            "evictionHard": {},
            "localStorageCapacityIsolation": False,
            "imageGCHighThresholdPercent": 100,
            "serializeImagePulls": False,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
        }

    def _ready(self) -> bool:
        path = '{.status.conditions[?(@.type=="Ready")].status}'
        got = self.cluster.kubectl("get", "node", REAL_NODE, "-o", f"jsonpath={path}", check=False)
        return got.strip() == "True"


def why_unavailable(network: NodeNetwork | None = None) -> str | None:
    """Why a real node cannot start on this machine, or None when it can."""
    bridge = (network or NodeNetwork()).bridge
    if os.geteuid() != 0:
        return "containers and their network need root (run as root, or use the KWOK fleet)"
    missing = [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None]
    missing += [f"CNI plugin {p}" for p in CNI_PLUGINS if not (CNI_BIN / p).exists()]
    if missing:
        return f"{', '.join(missing)} not installed (scripts/setup.sh system)"
    if (
        not Path("/sys/fs/cgroup/memory").is_dir()
        and not Path("/sys/fs/cgroup/cgroup.controllers").exists()
    ):
        return "no cgroup hierarchy under /sys/fs/cgroup"
    try:
        binary("kubelet")
    except ComponentError as error:
        return str(error)
    if Path("/sys/class/net", bridge).exists():
        # Two kubelets would fight over the pods' cgroups and the bridge.
        return (f"another voicefleet node runs on this machine (bridge {bridge} exists; "
                f"if none does, remove it: ip link delete {bridge})")  # fmt: skip
    return None


def _containerd_config(root: Path, socket: Path, cni: Path, sandbox_image: str) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[{cri}]
  sandbox_image = "{sandbox_image}"
  # Root here may not lower an OOM score (no CAP_SYS_RESOURCE): keep the runtime from trying.
  restrict_oom_score_adj = true
  [{cri}.containerd]
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni}"
"""


def _kill_shims(socket: Path) -> None:
    """containerd's shims outlive it by design; a node being removed takes them along."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError, ValueError):
            if str(socket) in cmdline.read_bytes().decode(errors="replace"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)


def _delete_unused_netns() -> None:
    """Remove pod network namespaces (containerd names them cni-*) that no process uses: what
    a killed sandbox leaves behind. Namespaces of another node's running pods are in use."""
    in_use = set()
    for link in Path("/proc").glob("[0-9]*/ns/net"):
        with contextlib.suppress(OSError):
            in_use.add(link.stat().st_ino)
    for netns in Path("/var/run/netns").glob("cni-*"):
        with contextlib.suppress(OSError):
            if netns.stat().st_ino not in in_use:
                _ip("netns", "delete", netns.name, check=False)


def _unmount_below(directory: Path) -> None:
    """Unmount what the kubelet and containerd mounted under `directory` (volumes, rootfs)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mounts = [
            line.split()[4]
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(str(directory) + "/")
        ]
        if not mounts:
            return
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ComponentError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _iptables(table: str, *args: str, check: bool = True) -> int:
    command = ["iptables", "-w", "-t", table, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ComponentError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.returncode
