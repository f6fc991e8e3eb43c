"""The shared shape of the read endpoints: parse the id (and `n`), fetch, 404 when absent;
while Redis does not answer, this process's recent answer if it has one (web.stale)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from web.errors import ApiError
from web.params import parse_id, parse_n
from web.state import cache, stale_answers


def fetch_or_404(
    kind: str, raw_id: str, fetch: Callable[..., Any], ranked: bool = False, hint: str = ""
) -> Any:
    """`fetch(reader, id)`, or `fetch(reader, id, n)` when `ranked`; None from it means 404."""
    wanted = parse_id(raw_id, kind)
    args = (wanted, parse_n()) if ranked else (wanted,)
    found = stale_answers().answer((fetch.__name__, *args), lambda: fetch(cache(), *args))
    if found is None:
        raise ApiError(404, f"{kind.capitalize()} not found", **({"hint": hint} if hint else {}))
    return found
