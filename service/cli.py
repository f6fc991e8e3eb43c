"""`movierec`: every command, and the one place where errors become messages.

A `MovierecError` (bad input, a missing model, a server that did not start) is printed as one
line with exit code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipeline.errors import MovierecError
from pipeline.process.collector import freeze_survivors
from service.serving_commands import add_serving_commands

# Commands that must start fast: they parse without importing the offline pipeline.
SERVING_COMMANDS = ("worker", "beat", "web", "up", "publish", "bootstrap", "rollback", "status")


def build_parser(offline: bool = True) -> argparse.ArgumentParser:
    """Every command; `offline=False` leaves out the offline ones, whose imports (pandas,
    scikit-learn, matplotlib) would add seconds to the start of every serving process."""
    parser = argparse.ArgumentParser(prog="movierec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if offline:
        from service.offline_commands import add_offline_commands

        add_offline_commands(sub)
    add_serving_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(offline=not (argv and argv[0] in SERVING_COMMANDS)).parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except MovierecError as exc:
        print(f"movierec: error: {exc}", file=sys.stderr)
        return 1
    except _redis_unreachable() as exc:  # the one environment failure a command can meet
        print(f"movierec: error: cannot reach Redis: {exc} (is REDIS_URL right?)", file=sys.stderr)
        return 1


def run() -> None:
    """The console script: `main`, then an exit that does not walk every object again."""
    status = main()
    freeze_survivors()
    sys.exit(status)


def _redis_unreachable() -> tuple[type[BaseException], ...]:
    """redis.ConnectionError if the command loaded redis, else nothing: a command that never
    imported redis cannot have met it, and importing it only to catch it costs every offline
    command ~0.07 s."""
    redis = sys.modules.get("redis")
    return (redis.ConnectionError,) if redis else ()


if __name__ == "__main__":
    run()
