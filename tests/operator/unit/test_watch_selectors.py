"""The pod and Deployment watches ask the API server for the fleet's objects only."""

from __future__ import annotations

from types import SimpleNamespace

import kopf

from voicefleet_models.voice_agent import GROUP, PLURAL, VERSION
from voicefleet_operator import handlers
from voicefleet_operator.storage import RememberedSpecs


def selectors(settings: kopf.OperatorSettings, *resource: str) -> list[str]:
    found: list[str] = settings.watching.label_selectors.collect(kopf.Resource(*resource))
    return found


def test_fleet_watches_are_selected_on_the_server_and_voiceagents_are_not() -> None:
    settings = kopf.OperatorSettings()
    state = SimpleNamespace(remembered_specs=RememberedSpecs())
    handlers.configure(settings, state)  # type: ignore[arg-type]
    managed = "app.kubernetes.io/managed-by=voicefleet"
    assert selectors(settings, "", "v1", "pods") == [managed]
    assert selectors(settings, "apps", "v1", "deployments") == [managed]
    assert selectors(settings, GROUP, VERSION, PLURAL) == []
    # Other API groups' pods or deployments are none of the operator's concern.
    assert selectors(settings, "metrics.k8s.io", "v1beta1", "pods") == []
