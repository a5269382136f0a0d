"""`python -m voicefleet_devstack demo|images`: what `make demo` and `make images` run."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "demo" and not rest:
        from voicefleet_devstack.demo import run_demo

        return run_demo()
    if command == "images":
        from voicefleet_devstack.images import main as build

        return build(rest)
    print(
        "usage: python -m voicefleet_devstack demo | images [operator|agent ...]", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
