"""`voicefleet`: the user's command line."""

from __future__ import annotations

import argparse
import sys

from voicefleet_operator import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voicefleet", description="voicefleet command line")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "loadtest",
        help="measure an agent's voice-to-voice latency with simulated callers",
        add_help=False,
    )
    gen = commands.add_parser("generate", help="write the CRD and configuration reference")
    gen.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args, rest = parser.parse_known_args(argv)
    if args.command == "loadtest":
        from voicefleet_agent.loadtest import run_cli

        run_cli(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return generate.main(["--check"] if args.check else [])


if __name__ == "__main__":
    sys.exit(main())
