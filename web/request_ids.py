"""The id of a request, for logs that must name an operation without naming the person: the
client's `X-Request-ID` when it is a plain token, else a new one; echoed in the answer."""

from __future__ import annotations

import re
import uuid

from flask import g, request

HEADER = "X-Request-ID"
PLAIN = re.compile(r"[A-Za-z0-9._-]{1,64}")  # nothing a log line could be forged with


def request_id() -> str:
    if "request_id" not in g:
        given = request.headers.get(HEADER, "")
        g.request_id = given if PLAIN.fullmatch(given) else uuid.uuid4().hex
    return g.request_id
