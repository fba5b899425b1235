"""Every route of both URLconfs, read from Django's URL resolver (never listed by hand).

A route is a path template (`/api/v1/portal/patients/{patient_id}/`) and one HTTP method its
view implements. The persona matrix (matrix.py) must name each of them: a new route or a new
method fails the suite until it has its row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern

TENANT_URLCONF = "config.urls_tenant"
PUBLIC_URLCONF = "config.urls_public"

# HEAD mirrors GET and OPTIONS answers metadata: both are covered once (test_options.py).
SKIPPED_METHODS = frozenset({"head", "options"})

# Plain function views carry no list of methods to read. Each one is declared here with the
# methods it serves; an undeclared function view fails test_every_view_is_introspectable.
FUNCTION_VIEW_METHODS: dict[str, tuple[str, ...]] = {
    "core.health.readyz": ("GET",),
}


@dataclass(frozen=True)
class Route:
    urlconf: str
    path: str  # "/api/v1/portal/patients/{patient_id}/"
    method: str  # "GET"
    name: str
    view: Any  # the view class, or the function for function views
    params: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def _route_template(route: str) -> str:
    return re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", route)


def _regex_template(regex: str) -> str:
    """`^me/diary/(?P<day>[0-9]{4}-…)/$` → `me/diary/{day}/` (groups may nest brackets)."""
    out, i = [], 0
    regex = regex.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
    while i < len(regex):
        if regex.startswith("(?P<", i):
            end = regex.index(">", i)
            out.append("{" + regex[i + 4 : end] + "}")
            depth, i = 1, end + 1
            while depth:
                char = regex[i]
                if char == "\\":
                    i += 1
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                i += 1
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _template(pattern: Any) -> str:
    if isinstance(pattern, RoutePattern):
        return _route_template(str(pattern))
    if isinstance(pattern, RegexPattern):
        return _regex_template(pattern.regex.pattern)
    raise TypeError(f"Unknown URL pattern type {type(pattern).__name__}")


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + _template(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + _template(entry.pattern), entry


def view_methods(callback: Any) -> tuple[str, ...]:
    """The methods a view serves: the class's http_method_names it implements (DRF and Django
    class-based views), or the declaration of a function view."""
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        dotted = f"{callback.__module__}.{callback.__qualname__}"
        if dotted not in FUNCTION_VIEW_METHODS:
            raise LookupError(f"Function view {dotted} serves undeclared methods: declare them.")
        return FUNCTION_VIEW_METHODS[dotted]
    allowed = getattr(view_class, "http_method_names", [])
    return tuple(
        m.upper() for m in allowed if m not in SKIPPED_METHODS and callable(getattr(view_class, m, None))
    )


def routes(urlconf: str) -> list[Route]:
    found = []
    for path, entry in _walk(get_resolver(urlconf).url_patterns, "/"):
        callback = entry.callback
        view = getattr(callback, "view_class", None) or getattr(callback, "cls", None) or callback
        params = tuple(re.findall(r"{(\w+)}", path))
        for method in view_methods(callback):
            found.append(Route(urlconf, path, method, entry.name or "", view, params))
    return found
