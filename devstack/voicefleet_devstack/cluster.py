"""A Kubernetes control plane from plain processes: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and KWOK, which plays the kubelet for fake nodes so pods reach Running."""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicefleet_devstack.pki import write_client_ca, write_key
from voicefleet_devstack.process import ComponentError, Process, binary, free_port

ADMIN_USER = "voicefleet-admin"
# Under a burst of writes kube-apiserver spends about a fifth of its CPU collecting garbage,
# CPU that everything else on a laptop's few cores waits for. Half as many collections cost
# memory: about 400 MB more at the peak of 1,000 VoiceAgents. A GOGC set by the user wins.
_CONTROL_PLANE_ENV = {"GOGC": os.environ.get("GOGC", "200")}


class KubectlError(ComponentError):
    """kubectl failed; the message carries its error output."""


KWOK_NODE = "kwok-node-0"
# The one node that runs containers (voicefleet_devstack.node), and its credentials' names.
REAL_NODE = "voicefleet-node"
KUBELET_CLIENT = "kubelet-client"


@dataclass
class LocalCluster:
    """A control plane under `workdir`; `kubeconfig` is usable once `start()` returns."""

    workdir: Path
    nodes: int = 1
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    node_token: str = field(default_factory=lambda: secrets.token_hex(16))
    processes: list[Process] = field(default_factory=list)
    api_port: int = 0
    profiling: bool = False  # serve the API server's /debug/pprof (benchmarks)
    audit: bool = False  # log every request's metadata to `audit_log` (see audited_requests)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit" / "audit.log"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def start(self, timeout: float = 90) -> LocalCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_credentials()
        etcd_port = self._start_etcd(timeout)
        self._start_apiserver(etcd_port, timeout)
        self._write_kubeconfig()
        self._start_controller_manager(timeout)
        self._start_scheduler(timeout)
        if self.nodes:  # KWOK's fake nodes; a cluster without them gets a RealNode instead
            self._start_kwok(timeout)
            self._create_nodes(timeout)
        return self

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def wait_established(self, crd: str, timeout: float = 30) -> None:
        """Wait until a CRD is served (`kubectl wait` errors while its status is still empty)."""
        path = '{.status.conditions[?(@.type=="Established")].status}'
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kubectl("get", "crd", crd, "-o", f"jsonpath={path}", check=False) == "True":
                return
            time.sleep(0.2)
        raise ComponentError(f"CRD {crd} was not established within {timeout:.0f}s")

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run kubectl against this cluster; raise with its stderr on failure."""
        result = subprocess.run(
            [binary("kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout + (result.stderr if not check else "")

    # -- processes -------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        process = Process(name, args, log, env=_CONTROL_PLANE_ENV).start()
        self.processes.append(process)
        return process

    def _start_etcd(self, timeout: float) -> int:
        client, peer = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                binary("etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # test data: durability is not worth the disk latency
                "--quota-backend-bytes=4294967296",
            ],
        )
        etcd.wait_until(lambda: _http_ok(f"http://127.0.0.1:{client}/health"), timeout)
        return client

    def _start_apiserver(self, etcd_port: int, timeout: float) -> None:
        self.api_port = free_port()
        pki = self.workdir / "pki"
        apiserver = self._spawn(
            "kube-apiserver",
            [
                binary("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={pki}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                # Node: a kubelet reads and writes only what its own pods need.
                "--authorization-mode=Node,RBAC",
                f"--kubelet-client-certificate={pki / f'{KUBELET_CLIENT}.crt'}",
                f"--kubelet-client-key={pki / f'{KUBELET_CLIENT}.key'}",
                # Nodes have no DNS names here: reach a kubelet at its node IP.
                "--kubelet-preferred-address-types=InternalIP",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                f"--profiling={str(self.profiling).lower()}",
                *self._audit_flags(),
            ],
        )
        apiserver.wait_until(lambda: self._get("/readyz") == "ok", timeout, "ready (/readyz)")

    def _audit_flags(self) -> list[str]:
        if not self.audit:
            return []
        policy = self.audit_log.parent / "policy.yaml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(json.dumps(_AUDIT_POLICY))  # JSON is YAML
        # Metadata of every request of every component: a few MB for a test run, cut at 200.
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json", "--audit-log-maxsize=200",
                "--audit-log-maxbackup=1"]  # fmt: skip

    def audited_requests(self, user: str) -> list[AuditedRequest]:
        """The requests `user` made, in the order the API server answered them."""
        if not self.audit:
            raise ComponentError("this cluster was started without audit=True")
        return read_audit_log(self.audit_log, user)

    def _start_controller_manager(self, timeout: float) -> None:
        port = free_port()
        manager = self._spawn(
            "kube-controller-manager",
            [
                binary("kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--service-account-private-key-file={self.workdir / 'pki' / 'sa.key'}",
                f"--root-ca-file={self.workdir / 'pki' / 'apiserver.crt'}",
                "--use-service-account-credentials=false",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=20",
            ],
        )
        manager.wait_until(lambda: _https_ok(f"https://127.0.0.1:{port}/healthz"), timeout)

    def _start_scheduler(self, timeout: float) -> None:
        port = free_port()
        scheduler = self._spawn(
            "kube-scheduler",
            [
                binary("kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
            ],
        )
        scheduler.wait_until(lambda: _https_ok(f"https://127.0.0.1:{port}/healthz"), timeout)

    def _start_kwok(self, timeout: float) -> None:
        port = free_port()
        kwok = self._spawn(
            "kwok",
            [
                binary("kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                # Pod IPs on loopback: a process on this machine can serve a pod's endpoints.
                "--cidr=127.10.0.1/16",
                "--node-ip=127.10.0.1",
                f"--server-address=127.0.0.1:{port}",
                f"--config={Path(__file__).with_name('kwok-stages.yaml')}",
            ],
        )
        kwok.wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), timeout)

    def _create_nodes(self, timeout: float) -> None:
        for index in range(self.nodes):
            self.kubectl("apply", "-f", "-", input=json.dumps(_fake_node(f"kwok-node-{index}")))
        self.kubectl("wait", "--for=condition=Ready", "node", "--all", f"--timeout={int(timeout)}s")

    # -- files -----------------------------------------------------------------------------

    def _write_credentials(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        (pki / "tokens.csv").write_text(
            f'{self.token},{ADMIN_USER},1,"system:masters"\n'
            f'{self.node_token},system:node:{REAL_NODE},2,"system:nodes"\n'
        )
        if not (pki / "sa.key").exists():
            write_key(pki / "sa.key")
        if not (pki / f"{KUBELET_CLIENT}.crt").exists():
            # The API server's identity towards kubelets (logs, exec), in system:masters.
            write_client_ca(pki, KUBELET_CLIENT, "kube-apiserver", "system:masters")

    def _write_kubeconfig(self) -> None:
        self.write_kubeconfig(self.kubeconfig, ADMIN_USER, self.token)

    def write_kubeconfig(self, path: Path, user: str, token: str) -> None:
        """A kubeconfig for this cluster that authenticates as `user` with `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "voicefleet-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.workdir / "pki" / "apiserver.crt"),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "voicefleet-local",
                    "context": {"cluster": "voicefleet-local", "user": user},
                }
            ],
            "current-context": "voicefleet-local",
        }
        path.write_text(json.dumps(config, indent=2))

    def _get(self, path: str) -> str:
        request = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=2, context=_insecure()) as response:
            body: bytes = response.read()
            return body.decode()


# Who asked for what, never the objects themselves; one entry per request, when answered
# (a watch also when its response starts).
_AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


@dataclass(frozen=True)
class AuditedRequest:
    """One request as the API server's audit log records it. `resource` is empty for
    non-resource URLs (discovery, /healthz), whose path is then `name`."""

    verb: str  # get, list, watch, create, update, patch, delete, ...
    api_group: str  # "" for the core group
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int  # the response's HTTP status
    # The authorizer's decision ("allow", "forbid"): a 403 from RBAC, not from admission.
    decision: str

    @property
    def refused(self) -> bool:
        return self.decision == "forbid"


def read_audit_log(path: Path, user: str) -> list[AuditedRequest]:
    """The requests of `user` in an audit log of JSON lines, each once (a watch is logged
    when its response starts and again when it ends)."""
    seen: set[str] = set()
    requests: list[AuditedRequest] = []
    with path.open() as log:
        for line in log:
            if not line.endswith("\n"):
                break  # still being written
            entry = json.loads(line)
            if entry.get("user", {}).get("username") != user or entry["auditID"] in seen:
                continue
            seen.add(entry["auditID"])
            requests.append(_audited(entry))
    return requests


def _audited(entry: dict[str, Any]) -> AuditedRequest:
    ref = entry.get("objectRef", {})
    annotations = entry.get("annotations", {})
    return AuditedRequest(
        verb=entry["verb"],
        api_group=ref.get("apiGroup", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", "") if ref else entry.get("requestURI", ""),
        code=int(entry.get("responseStatus", {}).get("code", 0)),
        decision=annotations.get("authorization.k8s.io/decision", ""),
    )


def _fake_node(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"},
        },
    }


def _insecure() -> ssl.SSLContext:
    # Readiness probes of self-signed local servers on loopback; clients use the kubeconfig CA.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _https_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=_insecure()) as response:
        return bool(response.status == 200)
