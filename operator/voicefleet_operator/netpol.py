"""The NetworkPolicy of one region's workers, a plain function of the VoiceAgent.

The operator renders it beside the region's Deployment because only the spec says what the
workers talk to: the region's LiveKit server, the metrics port they are scraped and probed
on, the URLs of tools and self-hosted models. Workers need the internet on 443 (speech and
language providers), DNS, LiveKit's signalling and media ports, and nothing else; they are
reached only on their metrics port.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from voicefleet_models.voice_agent import RegionSpec, VoiceAgentSpec
from voicefleet_operator.render import Owner, fleet_name, labels, selector

Manifest = dict[str, Any]
HTTPS = 443
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
# LiveKit's default WebRTC ports (livekit-server's rtc section): media over UDP 7882 or the
# 50000-60000 range, TCP 7881 when UDP is blocked, and its TURN server's UDP 3478. A LiveKit
# with other ports is still reached through TURN over TLS on 443.
LIVEKIT_MEDIA: list[Manifest] = [
    {"protocol": "TCP", "port": 7881},
    {"protocol": "UDP", "port": 7882},
    {"protocol": "UDP", "port": 3478},
    {"protocol": "UDP", "port": 50000, "endPort": 60000},
]


def url_port(url: str) -> int | None:
    """The TCP port a URL names or implies; None for what is not a URL."""
    try:
        parts = urlsplit(url)
        return parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None


def named_ports(spec: VoiceAgentSpec, region: RegionSpec) -> set[int]:
    """TCP ports of every URL the workers are told to reach: LiveKit, tools, self-hosted
    models, and URL-valued environment (an OpenTelemetry collector, for one)."""
    urls = [region.livekit.url, *(tool.http.url for tool in spec.tools)]
    urls += [llm.base_url for llm in spec.pipeline.llm if llm.base_url]
    urls += [env.value for env in spec.env if env.value and "://" in env.value]
    return {port for url in urls if (port := url_port(url)) is not None}


def network_policy(owner: Owner, spec: VoiceAgentSpec, region: RegionSpec) -> Manifest:
    """Ingress on the metrics port only (Prometheus, and the kubelet's probes); egress to
    DNS, HTTPS, the ports named by the spec's URLs and LiveKit's media ports."""
    tcp = sorted(named_ports(spec, region) | {HTTPS})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": fleet_name(owner, region.name),
            "namespace": owner.namespace,
            "labels": labels(owner, region.name),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "podSelector": {"matchLabels": selector(owner, region.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": spec.observability.metrics_port}]}],
            "egress": [
                # Cluster DNS, or a node-local cache: wherever the pod's resolver points.
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [*({"protocol": "TCP", "port": p} for p in tcp), *LIVEKIT_MEDIA]},
            ],
        },
    }
