"""Committed artifacts equal what their generators produce now."""

from __future__ import annotations

from voicefleet_operator import generate


def test_generated_artifacts_are_current() -> None:
    stale = [
        str(path.relative_to(generate.ROOT))
        for path, content in generate.artifacts().items()
        if not path.exists() or path.read_text() != content
    ]
    assert stale == [], f"run `make generate`: stale {stale}"


def test_crd_copies_are_identical() -> None:
    chart = generate.ROOT / "charts/voicefleet/crds/voiceagents.voicefleet.io.yaml"
    assert chart.read_text() == (generate.ROOT / "manifests/base/crd.yaml").read_text()
