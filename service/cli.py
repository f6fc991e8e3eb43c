"""`movierec`: the offline commands plus the serving ones (worker, beat, web, up, publish, ...)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import redis

from cache.settings import get_settings
from cache.versions import NoPreviousVersion
from pipeline.errors import DataError
from service.supervisor import ChildExited, Shutdown
from service.web_server import default_workers

# Commands that must start fast: they parse without importing the offline pipeline.
SERVING_COMMANDS = ("worker", "beat", "web", "up", "publish", "bootstrap", "rollback", "status")
# In-memory schedule: no pickled state file, and a weekly crontab needs no catch-up memory.
BEAT_SCHEDULER = "celery.beat:Scheduler"


def cmd_worker(args: argparse.Namespace) -> int:
    from tasks.celery_app import celery_app

    argv = ["worker", "--loglevel", args.loglevel, "--without-gossip", "--without-mingle"]
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    if args.beat:
        argv += ["--beat", "--scheduler", BEAT_SCHEDULER]
    celery_app.worker_main(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    from tasks.celery_app import celery_app

    celery_app.start(["beat", "--loglevel", args.loglevel, "--scheduler", BEAT_SCHEDULER])
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from service.web_server import serve

    serve(args.bind, args.workers, args.threads, args.access_log)
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from service.up import UpOptions, run_up

    if args.data:
        os.environ["MOVIEREC_DATA"] = str(Path(args.data).resolve())
    if args.out:
        os.environ["MOVIEREC_OUTPUT"] = str(Path(args.out).resolve())
    get_settings.cache_clear()
    options = UpOptions(
        bind=args.bind,
        redis_port=args.redis_port,
        web_workers=args.workers,
        concurrency=args.concurrency,
    )
    try:
        return run_up(options)
    except Shutdown:
        return 0
    except ChildExited as exc:
        print(f"movierec: error: {exc}; stopped everything", file=sys.stderr)
        return 1


def cmd_publish(args: argparse.Namespace) -> int:
    from cache.publish import PublishError, latest_version_dir, publish_version_dir
    from cache.redis_client import get_redis

    models = Path(args.out).resolve() / "models" if args.out else get_settings().models_dir
    folder = models / args.version if args.version else latest_version_dir(models)
    if folder is None:
        raise PublishError(f"no complete version in {models}: run `movierec pipeline` first")
    print(json.dumps(publish_version_dir(get_redis(), folder), indent=2))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """One-shot first training for deployments: idempotent, a no-op once a version is live."""
    from cache.publish import ensure_active, publish_version_dir
    from cache.redis_client import get_redis
    from pipeline.cli import print_stage
    from pipeline.run import PipelineParams, run_pipeline

    settings, r = get_settings(), get_redis()

    def train_here() -> dict:
        params = PipelineParams(plots=False)
        result = run_pipeline(settings.data_dir, settings.out_dir, params, print_stage)
        return publish_version_dir(r, result.version_dir)

    ensure_active(r, settings, train_here, lambda message: print(f"movierec: {message}"))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from cache import versions
    from cache.redis_client import get_redis

    active, previous = versions.rollback(get_redis())
    print(f"active version: {active} (previous: {previous})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from cache import versions
    from cache.redis_client import get_redis

    print(json.dumps(asdict(versions.read_pointers(get_redis())), indent=2))
    return 0


def add_serving_commands(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run a Celery worker (retrain, user chunks, refresh)")
    worker.add_argument("--beat", action="store_true", help="embed the beat scheduler")
    worker.add_argument("--concurrency", type=int, help="worker processes (default: cores)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="run the scheduler (exactly one per deployment)")
    beat.add_argument("--loglevel", default="INFO")
    beat.set_defaults(func=cmd_beat)

    web = sub.add_parser("web", help="serve the HTTP API under gunicorn")
    web.add_argument("--bind", default="127.0.0.1:8000")
    web.add_argument("--workers", type=int, default=default_workers())
    web.add_argument("--threads", type=int, default=1)
    web.add_argument("--access-log", action="store_true")
    web.set_defaults(func=cmd_web)

    up = sub.add_parser("up", help="Redis + worker + beat + web on this machine; Ctrl-C stops all")
    up.add_argument("--data", help="MovieLens folder for training (default: $MOVIEREC_DATA)")
    up.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    up.add_argument("--bind", default="127.0.0.1:8000")
    up.add_argument("--redis-port", type=int, help="embedded Redis port (default: a free one)")
    up.add_argument("--workers", type=int, default=2, help="web worker processes")
    up.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    up.set_defaults(func=cmd_up)

    publish = sub.add_parser("publish", help="load a version folder into Redis and activate it")
    publish.add_argument("--version", help="version id (default: models/LATEST)")
    publish.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    publish.set_defaults(func=cmd_publish)

    bootstrap = sub.add_parser(
        "bootstrap", help="publish the newest version, training first if there is none"
    )
    bootstrap.set_defaults(func=cmd_bootstrap)

    rollback = sub.add_parser("rollback", help="make the previous cached version active again")
    rollback.set_defaults(func=cmd_rollback)

    status = sub.add_parser("status", help="print the active, previous and pending versions")
    status.set_defaults(func=cmd_status)


def build_parser(offline: bool = True) -> argparse.ArgumentParser:
    """Every command; `offline=False` leaves out the offline ones, whose imports (pandas,
    scikit-learn, matplotlib) would add seconds to the start of every serving process."""
    if offline:
        from pipeline.cli import build_parser as build_offline_parser

        parser, sub = build_offline_parser(__doc__)
    else:
        parser = argparse.ArgumentParser(prog="movierec", description=__doc__)
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serving_commands(sub)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    """Failures that deserve one line, not a traceback; imported only once something failed."""
    from cache.publish import PublishError

    return (PublishError, NoPreviousVersion, FileNotFoundError, RuntimeError, DataError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SERVING_COMMANDS:
            args = build_parser(offline=False).parse_args(argv)
            return args.func(args)
        from pipeline.cli import run_command

        return run_command(build_parser(), argv)
    except KeyboardInterrupt:
        return 130
    except redis.RedisError as exc:
        print(f"movierec: error: Redis: {exc} (is REDIS_URL right?)", file=sys.stderr)
        return 1
    except Exception as exc:
        if not isinstance(exc, _known_errors()):
            raise
        print(f"movierec: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
