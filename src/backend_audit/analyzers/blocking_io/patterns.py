"""Glob patterns over canonical refs, as written in `rules/blocking_io.toml`.

A pattern is a canonical ref of a called callable with three wildcards:

* `*`      any text inside one dotted segment (`os.spawn*`, `redis.Redis().*`)
* `**`     any text, dots included (`psycopg2.connect()**.execute` matches
           `psycopg2.connect().cursor().execute`)
* `{a,b}`  alternatives, each may itself contain dots and markers

Patterns are grouped by their head (the first dotted name) so a ref is only tested against the
few patterns that can match it, and results are memoised per ref.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from backend_audit.index.project import split_top_level

T = TypeVar("T")

_HEAD_END = re.compile(r"[.(\[]")


class PatternError(ValueError):
    pass


def _split_alternatives(body: str) -> list[str]:
    """`a,b{c,d}` -> ["a", "b{c,d}"]: the alternatives of a `{...}` group."""
    return [a.strip() for a in split_top_level(body, ",", "{", "}")]


def _to_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append(r"[^.]*")
            i += 1
        elif ch == "{":
            depth, j = 0, i
            while j < len(pattern):
                if pattern[j] == "{":
                    depth += 1
                elif pattern[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(pattern):
                raise PatternError(f"unbalanced '{{' in pattern {pattern!r}")
            alts = _split_alternatives(pattern[i + 1:j])
            out.append("(?:" + "|".join(_to_regex(a) for a in alts) + ")")
            i = j + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _heads(pattern: str) -> set[str]:
    """The possible first names of refs the pattern matches ("" when it starts with a wildcard)."""
    if pattern.startswith("{"):
        depth, j = 0, 0
        while j < len(pattern):
            if pattern[j] == "{":
                depth += 1
            elif pattern[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out: set[str] = set()
        for alt in _split_alternatives(pattern[1:j]):
            out |= _heads(alt + pattern[j + 1:])
        return out
    m = _HEAD_END.search(pattern)
    head = pattern[:m.start()] if m else pattern
    if "*" in head or "{" in head:
        return {""}
    return {head}


def head_of(ref: str) -> str:
    m = _HEAD_END.search(ref)
    return ref[:m.start()] if m else ref


def compile_pattern(pattern: str) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError(f"pattern must be a non-empty string (got {pattern!r})")
    try:
        return re.compile(_to_regex(pattern.strip()) + r"\Z")
    except re.error as exc:  # pragma: no cover - escaped input
        raise PatternError(f"invalid pattern {pattern!r}: {exc}") from None


def check_pattern(pattern: str) -> None:
    """Raise PatternError for a malformed pattern (without keeping the compiled regex)."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError(f"pattern must be a non-empty string (got {pattern!r})")
    depth = 0
    for ch in pattern:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            break
    if depth != 0:
        raise PatternError(f"unbalanced '{{' in pattern {pattern!r}")


@dataclass
class PatternSet(Generic[T]):
    """Patterns, each carrying a payload; `match(ref)` returns the first payload that matches.

    Regexes are compiled per head on first use: a scan only pays for the libraries it meets.
    """

    _raw: dict[str, list[tuple[str, T]]] = field(default_factory=dict)
    _by_head: dict[str, list[tuple[re.Pattern[str], T]]] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)

    def add(self, pattern: str, payload: T) -> None:
        check_pattern(pattern)
        for head in _heads(pattern.strip()):
            self._raw.setdefault(head, []).append((pattern.strip(), payload))
            self._by_head.pop(head, None)
        self._memo.clear()

    def extend(self, patterns: Iterable[str], payload: T) -> None:
        for p in patterns:
            self.add(p, payload)

    def _compiled(self, head: str) -> list[tuple[re.Pattern[str], T]]:
        out = self._by_head.get(head)
        if out is None:
            out = self._by_head[head] = [(compile_pattern(p), payload) for p, payload in self._raw.get(head, ())]
        return out

    def match(self, ref: str | None) -> T | None:
        if not ref:
            return None
        try:
            return self._memo[ref]
        except KeyError:
            pass
        found = None
        for rx, payload in self._compiled(head_of(ref)) + self._compiled(""):
            if rx.match(ref):
                found = payload
                break
        self._memo[ref] = found
        return found

    def patterns(self) -> list[str]:
        """Every pattern added, once."""
        seen: dict[str, None] = {}
        for items in self._raw.values():
            for p, _ in items:
                seen.setdefault(p, None)
        return list(seen)

    def __contains__(self, ref: str) -> bool:
        return self.match(ref) is not None
