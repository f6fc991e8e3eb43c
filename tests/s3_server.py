"""A real S3 server for tests: moto in server mode, as s3fs and pandas test their S3 code."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from service.embedded_redis import free_port
from service.polling import wait_for_server

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "movierec-test",
    "AWS_SECRET_ACCESS_KEY": "movierec-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_buckets = itertools.count()


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach the server (no other AWS setting leaks in)."""
        return CREDENTIALS | {"AWS_ENDPOINT_URL": self.endpoint}

    def new_bucket(self) -> str:
        """A bucket of its own for one test; returns its s3:// URL with a prefix."""
        import boto3

        name = f"movierec-{os.getpid()}-{next(_buckets)}"
        client = boto3.client("s3", endpoint_url=self.endpoint, **_boto_credentials())
        client.create_bucket(Bucket=name)
        return f"s3://{name}/models"

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP): it accepts connections and answers nothing."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


@contextmanager
def running_s3_server(log: Path) -> Iterator[S3Server]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_server(
            "moto_server",
            endpoint,
            lambda: _answers(endpoint),
            lambda: process.poll() is None,
            timeout=60,
            log=log,
        )
        yield S3Server(endpoint, process)
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
            return True
    except OSError:
        return False
