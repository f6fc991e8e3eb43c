"""The serving commands: worker, beat, web, up, publish, bootstrap, rollback, status.

They must start fast, so each imports what it needs when it runs: none imports pandas or
scikit-learn before it has to.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cache.settings import get_settings, get_store
from service.web_server import WEB_THREADS, default_web_workers, default_workers

if TYPE_CHECKING:
    from db.database import Database

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
    from service.supervisor import Shutdown
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
        web_threads=args.threads,
        concurrency=args.concurrency,
    )
    try:
        return run_up(options)
    except Shutdown:
        return 0


def settings_database() -> Database | None:
    from db.database import database

    url = get_settings().database_url
    return database(url) if url else None


def cmd_publish(args: argparse.Namespace) -> int:
    from cache.publish import PublishError, publish_stored
    from cache.redis_client import get_redis
    from db.erasure import erased_ids
    from store.versions import store_for_output

    store = store_for_output(Path(args.out).resolve()) if args.out else get_store()
    version = args.version or store.latest()
    if version is None:
        raise PublishError(f"no complete version in {store.url}: run `movierec pipeline` first")
    erased = erased_ids(settings_database())
    print(json.dumps(publish_stored(get_redis(), store, version, erased), indent=2))
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    """One-shot first training for deployments: idempotent, a no-op once a version is live."""
    from cache.redis_client import get_redis
    from service.bootstrap import ensure_active

    settings, r = get_settings(), get_redis()

    def train_here() -> dict:
        """Only when no version is live: the training libraries load then, not before."""
        from cache.publish import publish_stored
        from db.erasure import erased_ids
        from pipeline.params import PipelineParams
        from pipeline.run import run_pipeline
        from service.database_setup import training_source
        from service.offline_commands import print_stage, say

        source = training_source(settings, say)
        result = run_pipeline(source, settings.out_dir, PipelineParams(plots=False), print_stage)
        get_store().commit(result.folder)
        return publish_stored(r, get_store(), result.version, erased_ids(settings_database()))

    ensure_active(r, settings, train_here, lambda message: print(f"movierec: {message}"))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from cache import versions
    from cache.redis_client import get_redis

    swap = versions.rollback(get_redis())
    print(f"active version: {swap.active} (previous: {swap.previous})")
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

    web = sub.add_parser("web", help="serve the HTTP API under granian")
    web.add_argument("--bind", default="127.0.0.1:8000")
    web.add_argument("--workers", type=int, default=default_web_workers(), help="one per core")
    web.add_argument("--threads", type=int, default=WEB_THREADS, help="per worker")
    web.add_argument("--access-log", action="store_true")
    web.set_defaults(func=cmd_web)

    up = sub.add_parser("up", help="Redis + worker + beat + web on this machine; Ctrl-C stops all")
    up.add_argument("--data", help="MovieLens folder for training (default: $MOVIEREC_DATA)")
    up.add_argument("--out", help="artifact folder (default: $MOVIEREC_OUTPUT or output/)")
    up.add_argument("--bind", default="127.0.0.1:8000")
    up.add_argument("--redis-port", type=int, help="embedded Redis port (default: a free one)")
    up.add_argument(
        "--workers",
        type=int,
        default=default_web_workers(),
        help="web worker processes (default: one per core, as `movierec web`)",
    )
    up.add_argument("--threads", type=int, default=WEB_THREADS, help="threads per web worker")
    up.add_argument(
        "--concurrency",
        type=int,
        default=default_workers(),
        help="Celery worker processes (default: two per core: a refresh mostly waits on Redis "
        "and PostgreSQL)",
    )
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
