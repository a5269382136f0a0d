"""The workers' NetworkPolicy as a pure function of the spec: in on the metrics port only;
out to DNS, 443, LiveKit's signalling and media ports and the ports the spec's URLs name."""

from __future__ import annotations

from typing import Any

from voicefleet_models.voice_agent import VoiceAgentSpec
from voicefleet_operator.netpol import LIVEKIT_MEDIA, network_policy, url_port
from voicefleet_operator.render import Owner, selector

from ..helpers import BASE_AGENT, voice_agent

OWNER = Owner("support", "voice", "uid-1")


def policy_of(**spec: Any) -> dict[str, Any]:
    parsed = VoiceAgentSpec.model_validate(voice_agent(**spec)["spec"])
    return network_policy(OWNER, parsed, parsed.regions[0])


def tcp_ports(policy: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]
            if p["protocol"] == "TCP" and p["port"] != 53}  # fmt: skip


def test_workers_are_reached_on_their_metrics_port_only() -> None:
    policy = policy_of(observability={"metricsPort": 9200})
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": selector(OWNER, "us-east")}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9200}]}]
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_workers_reach_dns_https_livekit_and_the_urls_of_their_spec() -> None:
    livekit = {"url": "ws://livekit.internal:7880", "credentialsSecret": "lk"}
    region = {**BASE_AGENT["spec"]["regions"][0], "livekit": livekit}
    env = [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://collector:4318"},
           {"name": "GREETING", "value": "hello"}]  # fmt: skip
    policy = policy_of(regions=[region], env=env)
    dns, out = policy["spec"]["egress"]
    assert dns == {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    assert "to" not in out  # providers' addresses are not known: any address, these ports
    assert tcp_ports(policy) == {443, 7880, 4318, 7881}
    assert all(media in out["ports"] for media in LIVEKIT_MEDIA)
    # Nothing else: no port 80 unless a URL names it.
    assert 80 not in tcp_ports(policy)


def test_url_ports_follow_the_scheme_when_not_written() -> None:
    assert url_port("wss://lk.example.com") == 443
    assert url_port("http://vllm.internal") == 80
    assert url_port("https://tools.example.com:8443/book") == 8443
    assert url_port("not a url") is None
