"""Observability end to end: a real Prometheus with the generated rules scrapes the operator
and real agent workers while the load-test tool calls them; the SLI recording rules give the
expected values and, for a worker with a slowed LLM, the page-tier latency burn-rate
expression is true. With the chart's price rules for the test's prices, the cost rules price
what the calls used."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicefleet_agent.loadtest import LoadTestOptions, LoadTestReport, run_loadtest
from voicefleet_devstack.livekit import LiveKitServer
from voicefleet_devstack.prometheus import Prometheus
from voicefleet_operator.chart import template

from ..conftest import RunningOperator
from ..delivery.chart import find, objects
from ..helpers import eventually
from .conftest import AgentWorker, pipeline_config

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "dashboards" / "generated" / "rules.yaml"
NAMESPACE = "e2e"


def simulated(delay: float) -> list[dict[str, Any]]:
    return [{"provider": "simulated", "simulation": {"delaySeconds": delay}}]


def alert_expression(name: str, severity: str | None = None) -> str:
    """An alert's expression exactly as the rule file has it."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        if rule.get("alert") == name and severity in (None, rule["labels"]["severity"]):
            return str(rule["expr"])
    raise AssertionError(f"no alert {name} ({severity or 'any severity'}) in the rule file")


def page_alert_expression() -> str:
    return alert_expression("VoiceFleetVoiceToVoiceLatencyBudgetBurn", "page")


@pytest.fixture(scope="module")
def workers(worker_factory: Callable[..., AgentWorker]) -> dict[str, AgentWorker]:
    fast = pipeline_config("obs-fast", simulated(0.1), simulated(0.2), simulated(0.1))
    # Short turn detection keeps fast turns well under the 1.5 s threshold on a busy machine.
    fast["pipeline"].update(
        vad={"minSilenceSeconds": 0.3}, turn={"minEndpointingDelaySeconds": 0.2}
    )
    # Voice-to-voice above the 1.5 s SLO threshold on every turn.
    slow = pipeline_config("obs-slow", simulated(0.1), simulated(2.0), simulated(0.1))
    metered = pipeline_config("obs-cost", simulated(0.1), simulated(0.2), simulated(0.1))
    return {
        "fast": worker_factory(fast),
        "slow": worker_factory(slow),
        "metered": worker_factory(metered),
    }


# Per unit the test's calls use, in the chart's terms: the simulated providers' models.
PRICING = {
    "agentMinute": 0.6,
    "llm": [{"provider": "simulated", "model": "simulated-llm",
             "promptPer1kTokens": 3.0, "completionPer1kTokens": 15.0}],
    "stt": [{"provider": "simulated", "model": "simulated-stt", "perMinute": 1.2}],
    "tts": [{"provider": "simulated", "model": "simulated-tts", "per1MCharacters": 30000.0}],
}  # fmt: skip
UNIT_PRICES = {  # the same, per single unit
    ("voicefleet_agent_llm_tokens_total", 'kind="prompt"'): 3.0 / 1000,
    ("voicefleet_agent_llm_tokens_total", 'kind="completion"'): 15.0 / 1000,
    ("voicefleet_agent_stt_audio_seconds_total", ""): 1.2 / 60,
    ("voicefleet_agent_tts_characters_total", ""): 30000.0 / 1e6,
    ("voicefleet_agent_conversation_seconds_total", ""): 0.6 / 60,
}


def price_rules(directory: Path) -> Path:
    """The price group the chart renders from PRICING, as a rule file."""
    values = directory / "pricing.yaml"
    values.write_text(yaml.safe_dump({"pricing": PRICING}))
    rendered = objects(template("monitoring.prometheusRule.enabled=true", values_file=values))
    groups = find(rendered, "PrometheusRule")["spec"]["groups"]
    path = directory / "prices.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [g for g in groups if g["name"] == "voicefleet-prices"]})
    )
    return path


@pytest.fixture(scope="module")
def prometheus(
    workers: dict[str, AgentWorker],
    operator: RunningOperator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Prometheus]:
    operator_target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
    server = Prometheus(
        tmp_path_factory.mktemp("prometheus"),
        targets={
            "voicefleet-agent": [w.url.removeprefix("http://") for w in workers.values()],
            "voicefleet-operator": [operator_target],
        },
        target_labels={"voicefleet-agent": {"namespace": NAMESPACE}},
        rule_files=[RULES, price_rules(tmp_path_factory.mktemp("prices"))],
    )
    try:
        yield server.start()
    finally:
        server.stop()


async def call(livekit: LiveKitServer, agent: str, turns: int, callers: int = 1) -> LoadTestReport:
    options = LoadTestOptions(
        url=livekit.url,
        api_key=livekit.api_key,
        api_secret=livekit.api_secret,
        agent_name=agent,
        turns=turns,
        callers=callers,
        room_prefix=f"obs-{agent}",
    )
    report = await run_loadtest(options)
    assert report.turns_completed == turns * callers, report.errors
    return report


async def first_value(
    prometheus: Prometheus,
    promql: str,
    until: Callable[[float], bool] = lambda _: True,
    within: float = 45,
) -> float:
    """The query's first value that satisfies `until` (scrapes trail the calls by a second)."""
    deadline = asyncio.get_running_loop().time() + within
    last: float | None = None
    while asyncio.get_running_loop().time() < deadline:
        result = await asyncio.to_thread(prometheus.query, promql)
        if result:
            last = float(result[0]["value"][1])
            if until(last):
                return last
        await asyncio.sleep(1)
    raise AssertionError(f"{promql} gave {last} within {within}s, not the value expected")


async def test_recording_rules_and_latency_alert(
    livekit: LiveKitServer, workers: dict[str, AgentWorker], prometheus: Prometheus
) -> None:
    await asyncio.gather(call(livekit, "obs-fast", 3), call(livekit, "obs-slow", 2))

    def agent(name: str) -> str:
        return f'{{namespace="{NAMESPACE}",agent="{name}"}}'

    slow_share = "namespace_agent:voicefleet_agent_voice_to_voice_slow_turns:ratio_rate5m"
    assert await first_value(prometheus, slow_share + agent("obs-slow")) == 1.0
    assert await first_value(prometheus, slow_share + agent("obs-fast")) == 0.0
    median = await first_value(
        prometheus,
        "namespace_agent_region_quantile:voicefleet_agent_voice_to_voice_seconds:"
        'histogram_quantile_rate5m{agent="obs-fast",quantile="0.5"}',
    )
    assert 0.3 < median < 1.5, median
    turns_total = f"sum(voicefleet_agent_turns_total{agent('obs-fast')})"
    assert await first_value(prometheus, turns_total, until=lambda turns: turns >= 3) >= 3

    # The operator is scraped under the job the operational alerts expect.
    assert await first_value(prometheus, 'up{job="voicefleet-operator"}') == 1.0
    operator_down = alert_expression("VoiceFleetOperatorDown")
    assert await asyncio.to_thread(prometheus.query, operator_down) == []
    # The operator's own series are in Prometheus (first_value fails when a query is empty).
    await first_value(
        prometheus,
        'voicefleet_operator_reconcile_duration_seconds_count{job="voicefleet-operator"}',
    )

    alert = page_alert_expression()
    firing = await asyncio.to_thread(prometheus.query, alert)
    assert {sample["metric"]["agent"] for sample in firing} == {"obs-slow"}


async def test_call_minutes_and_cost(
    livekit: LiveKitServer, workers: dict[str, AgentWorker], prometheus: Prometheus
) -> None:
    worker = workers["metered"]
    report = await call(livekit, "obs-cost", turns=2, callers=3)
    assert len(report.call_seconds) == 3
    sessions = "voicefleet_agent_session_duration_seconds_count"
    await asyncio.to_thread(eventually, lambda: worker.sample(sessions) == 3, 30)
    # The worker's time of each call runs from its session's start (the job, after the caller
    # dialled) to the caller hanging up: never more than a second longer than the caller's
    # own, dial to hang-up, and shorter only by the dispatch (a few seconds at most here).
    durations = worker.sample("voicefleet_agent_session_duration_seconds_sum")
    dialled = sum(report.call_seconds)
    assert dialled - 3 * 3 < durations <= dialled + 3 * 1, (durations, report.call_seconds)
    conversation = worker.sample("voicefleet_agent_conversation_seconds_total")
    assert conversation == pytest.approx(durations)
    assert worker.sample("voicefleet_agent_sessions_total", outcome="completed") == 3

    # Prometheus prices the calls with the chart's price rules: the cost the rules recorded at
    # one evaluation is what the raw usage rates at that moment cost at PRICING.
    usage = {
        key: "sum(rate({}{{{}}}[5m]))".format(
            key[0], ", ".join(filter(None, ['agent="obs-cost"', key[1]]))
        )
        for key in UNIT_PRICES
    }
    for promql in usage.values():  # every counter scraped twice since the calls ended
        await first_value(prometheus, promql, until=lambda value: value > 0)
    ready = time.time()
    cost = 'namespace_agent:voicefleet_agent_cost:rate5m{agent="obs-cost"}'
    at = 0.0
    while at <= ready:  # the time of a rule evaluation after that
        await asyncio.sleep(0.5)
        (stamp,) = await asyncio.to_thread(prometheus.query, f"timestamp({cost})")
        at = float(stamp["value"][1])
    (sample,) = await asyncio.to_thread(prometheus.query, cost, at)
    recorded = float(sample["value"][1])
    expected = 0.0
    for (metric, matcher), price in UNIT_PRICES.items():
        rate = await asyncio.to_thread(prometheus.query, usage[(metric, matcher)], at)
        assert rate, f"no {metric}{{{matcher}}} at {at}"
        used = float(rate[0]["value"][1])
        assert used > 0, f"{metric}{{{matcher}}} not used"
        expected += used * price
    assert recorded == pytest.approx(expected, rel=1e-9)
    unpriced = (
        'namespace_agent_provider_model:voicefleet_agent_unpriced_usage:rate5m{agent="obs-cost"}'
    )
    assert await asyncio.to_thread(prometheus.query, unpriced) == []
    per_call = 'namespace_agent:voicefleet_agent_cost_per_session:ratio_rate5m{agent="obs-cost"}'
    assert await first_value(prometheus, per_call) > 0
