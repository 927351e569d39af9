"""List responses (`{"data", "next", "previous"}` with limit/offset links) and query parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from .problems import _bad_request


class Paging:
    """Paged lists and query-parameter parsing of the fake (mixed into FakeAirbyteApi)."""

    def _paged(self, items: list[Any], query: dict[str, list[str]], path: str, keep: Iterable[str]) -> dict[str, Any]:
        limit = self._int_param(query, "limit", 20)
        offset = self._int_param(query, "offset", 0)
        if limit < 1 or limit > 100:
            raise _bad_request("limit must be between 1 and 100")
        if offset < 0:
            raise _bad_request("offset must be >= 0")
        page = items[offset : offset + limit]
        base_params = [(k, v) for k in keep for v in query.get(k, [])]

        def link(new_offset: int) -> str:
            return f"{self.api_url}{path}?" + urlencode(base_params + [("limit", limit), ("offset", new_offset)])

        return {
            "data": page,
            "next": link(offset + limit) if page and len(page) >= limit else "",
            "previous": link(max(offset - limit, 0)) if offset != 0 else "",
        }

    @staticmethod
    def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
        raw = query.get(name, [None])[-1]
        if raw in (None, ""):
            return default
        try:
            return int(raw)
        except ValueError:
            raise _bad_request(f"{name} must be an integer") from None

    @staticmethod
    def _list_param(query: dict[str, list[str]], name: str) -> list[str]:
        out: list[str] = []
        for raw in query.get(name, []):
            out.extend(p for p in raw.split(",") if p)
        return out

    @staticmethod
    def _bool_param(query: dict[str, list[str]], name: str) -> bool:
        return query.get(name, ["false"])[-1].lower() == "true"
