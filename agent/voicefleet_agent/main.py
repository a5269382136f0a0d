"""`voicefleet-agent start|dev`: run the agent worker described by $VOICEFLEET_CONFIG.

A configuration that cannot work here (no config, an invalid one, a missing provider key or
LiveKit credential, no espeak-ng for the offline TTS) stops start-up with one line on stderr and
exit code 2, before anything connects.
"""

from __future__ import annotations

import argparse
import multiprocessing.forkserver
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from pydantic import ValidationError

from voicefleet_agent.espeak import EspeakMissingError, espeak_path
from voicefleet_models.agent_config import AgentConfig, missing_keys
from voicefleet_models.tool_spec import missing_header_variables

CONFIG_VARIABLE = "VOICEFLEET_CONFIG"
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LIVEKIT_VARIABLES = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")
EXIT_CONFIG = 2
# The framework's event-loop monitor ticks every fifth of its warn threshold in every process,
# warm idle ones included, each tick waking the loop and a watchdog thread: at its 100 ms
# default that is 100 wake-ups a second per process. At 250 ms it ticks every 50 ms (its
# coarsest) and still reports stalls from 250 ms on, errors from 500 ms as before. An explicit
# value in the environment wins.
LOOP_BLOCK_WARN_VARIABLE = "LIVEKIT_AGENTS_LOOP_BLOCK_WARN_MS"
LOOP_BLOCK_WARN_MS = "250"
# The framework loads its own local models into the forkserver unless told not to: a VAD and
# the end-of-turn weights, about 245 MiB in all. voicefleet uses neither (Silero's plugin is
# the VAD; turns end on it and the endpointing delays), so off by default: an idle worker then
# holds about 310 MiB instead of 555. An explicit value in the environment wins.
PRELOAD_LOCAL_MODELS_VARIABLE = "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"
PRELOAD_LOCAL_MODELS = "0"
# What the forkserver that forks job processes imports once, for all of them: the pipeline
# (Silero, the provider plugins) and voicefleet's warm-up, then the framework's own warm-up and
# its gc.freeze, which must come last.
PRELOAD_MODULES = ("voicefleet_agent.worker", "voicefleet_agent.preload")
FRAMEWORK_PRELOAD_MODULES = ("livekit.agents.ipc._preload", "livekit.agents.ipc._preload_freeze")


class StartupError(Exception):
    """One line telling the user what is wrong and how to fix it."""


def load_config(env: Mapping[str, str]) -> AgentConfig:
    path = env.get(CONFIG_VARIABLE)
    if not path:
        raise StartupError(
            f"{CONFIG_VARIABLE} is not set: point it at the agent config JSON "
            "(the operator mounts it from the agent's ConfigMap)"
        )
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise StartupError(f"cannot read {CONFIG_VARIABLE}={path}: {e.strerror}") from None
    try:
        return AgentConfig.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise StartupError(f"invalid config {path}: {where}: {first['msg']}") from None


def check_environment(config: AgentConfig, env: Mapping[str, str]) -> None:
    """Everything the worker needs from its environment, checked before it starts."""
    if missing := missing_keys(config.pipeline, env):
        raise StartupError(missing[0].message())
    for tool, variable in missing_header_variables(config.tools, env):
        raise StartupError(
            f"{variable} is not set: a header of tool {tool} needs it "
            "(set it from a Secret with env valueFrom.secretKeyRef)"
        )
    if config.agent.entrypoint is not None:
        # Imported here: the framework must not be loaded before the forkserver starts.
        from voicefleet_agent.custom import AgentCodeError, load_builder

        try:
            load_builder(config.agent.entrypoint)
        except AgentCodeError as error:
            raise StartupError(str(error)) from None
    for variable in LIVEKIT_VARIABLES:
        if not env.get(variable):
            raise StartupError(
                f"{variable} is not set: the worker needs it to reach LiveKit "
                "(set it from a Secret with env valueFrom.secretKeyRef)"
            )
    if any(spec.provider == "offline" for spec in config.pipeline.tts):
        try:
            espeak_path()
        except EspeakMissingError as e:
            raise StartupError(str(e)) from None


def prepare_metrics_dir(env: MutableMapping[str, str]) -> str:
    """Point prometheus-client at a fresh multiprocess directory.

    Must run before prometheus_client is imported: it picks its storage at import time."""
    path = env.get(METRICS_DIR_VARIABLE) or tempfile.mkdtemp(prefix="voicefleet-metrics-")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    env[METRICS_DIR_VARIABLE] = path
    return path


def default_environment(env: MutableMapping[str, str]) -> None:
    """Framework settings voicefleet chooses, set before any process of the worker starts."""
    env.setdefault(LOOP_BLOCK_WARN_VARIABLE, LOOP_BLOCK_WARN_MS)
    env.setdefault(PRELOAD_LOCAL_MODELS_VARIABLE, PRELOAD_LOCAL_MODELS)


def start_forkserver() -> None:
    """Start the job processes' forkserver before this process imports the framework.

    Left to the framework, it starts only once this process has imported the framework, and
    then spends as long importing it again. Started here, the two imports run side by side and
    the worker is ready for jobs 1.5–2 s sooner on 2 cores (`bench/agent_start.py`); the
    framework finds the forkserver running and forks from it. Job processes inherit its
    environment as it is now: the one variable the framework adds later is added again in
    `voicefleet_agent.preload`. Only Linux runs job processes from a forkserver."""
    if sys.platform.startswith("linux"):
        multiprocessing.forkserver.set_forkserver_preload(
            [*PRELOAD_MODULES, *FRAMEWORK_PRELOAD_MODULES]
        )
        multiprocessing.forkserver.ensure_running()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="voicefleet-agent", description="Run a voicefleet agent worker."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, level in (
        ("start", "run the worker (production)", "INFO"),
        ("dev", "run the worker with development defaults (debug logs)", "DEBUG"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--log-level", default=os.environ.get("LIVEKIT_LOG_LEVEL", level))
        command.add_argument("--log-format", choices=["json", "colored"], default="json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(os.environ)
        prepare_metrics_dir(os.environ)
        check_environment(config, os.environ)
        default_environment(os.environ)
    except StartupError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    start_forkserver()
    from livekit.agents.cli import proto
    from livekit.agents.cli.cli import _run_worker

    from voicefleet_agent.worker import build_server

    # The runner behind `python -m livekit.agents start`: JSON logs, SIGTERM drains the worker.
    _run_worker(
        build_server(config, os.environ),
        proto.CliArgs(
            log_level=args.log_level.upper(),
            log_format=args.log_format,
            dev=args.command == "dev",
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
