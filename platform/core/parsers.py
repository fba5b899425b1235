from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """JSON parser that answers absurdly nested documents with a 400, not a RecursionError.

    UTF-8 bodies (every client of ours) are parsed by orjson (issue 19): native code, and as
    strict as DRF's parser (NaN and Infinity are refused, nesting is limited). A body declared in
    another charset takes DRF's path."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
            try:
                return orjson.loads(stream.read())
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"JSON parse error - {exc}") from exc
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON nested too deeply.") from exc
