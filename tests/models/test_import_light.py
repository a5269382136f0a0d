"""voicefleet_models stays import-light: the operator, the agent worker and the generators all
build on it, so importing it must load pydantic and the standard library only, never another
voicefleet package or the stacks they carry (livekit, kopf, aiohttp, …)."""

from __future__ import annotations

import json
import subprocess
import sys

# Every module of the package, imported in a fresh interpreter; it prints what got loaded.
IMPORT_ALL = """
import json, pkgutil, sys
import voicefleet_models
for module in pkgutil.walk_packages(voicefleet_models.__path__, "voicefleet_models."):
    __import__(module.name)
print(json.dumps(sorted(sys.modules)))
"""
PYDANTIC = frozenset(
    {"pydantic", "pydantic_core", "typing_extensions", "annotated_types", "typing_inspection"}
)
NEVER = (
    "livekit", "kopf", "aiohttp", "kubernetes", "prometheus_client", "opentelemetry",
    "voicefleet_operator", "voicefleet_agent", "voicefleet_dashboards", "voicefleet_devstack",
)  # fmt: skip


def loaded_after_importing_the_models() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_importing_the_models_loads_only_pydantic_and_the_standard_library() -> None:
    modules = loaded_after_importing_the_models()
    assert "voicefleet_models.voice_agent" in modules
    assert "voicefleet_models.agent_config" in modules
    top_level = {name.split(".")[0] for name in modules}
    assert [name for name in NEVER if name in top_level] == []
    others = top_level - set(sys.stdlib_module_names) - PYDANTIC - {"voicefleet_models"}
    assert sorted(n for n in others if not n.startswith("_")) == []
