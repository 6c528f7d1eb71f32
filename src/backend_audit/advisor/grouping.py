"""Findings grouped by root cause, with short stable ids and a priority.

A *root cause* is what one fix removes. One missing index with five query sites is one group (the
index); one sync helper that blocks the loop for three async endpoints is one group (the helper);
one sink reached from two request parameters is one group (the sink). The key is the rule plus
the target the finding's context names (model/table + field/column, the blocking call inside its
helper, the relation inside its function), falling back to the first related location, and
finally to the finding's own line.

Short ids: `F1`, `F2`, ... follow the findings' sorted order (path, line, column, rule), so the same
scan always gives the same ids; the report maps each id to its fingerprint.

Priority (`P0` fix now ... `P3` when convenient) is computed from severity, confidence and
context: code on a request path or in an async endpoint is raised one step; code that runs in a
migration, a management command, a script or a test is lowered one step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backend_audit.findings import CONFIDENCES, SEVERITIES, Finding

PRIORITIES = ("P0", "P1", "P2", "P3")

_SCRIPT_PATH = re.compile(
    r"(^|/)(scripts?|bin|tools|management/commands|migrations|alembic/versions|tests?|conftest\.py|test_[^/]*\.py|[^/]*_test\.py|setup\.py|manage\.py|fabfile\.py|noxfile\.py)(/|$)"
)
_HOT_KEYS = ("request_path", "route", "endpoint", "view", "handler", "url", "async_endpoint")
_SCRIPT_KEYS = ("migration", "script", "management_command", "test")


@dataclass
class Group:
    """One root cause: the findings one fix removes."""

    key: tuple[str, ...]
    findings: list[Finding]
    ids: list[str]
    rule: str
    category: str
    severity: str
    confidence: str
    priority: str = "P3"
    score: float = 0.0
    hot: bool = False  # on a request path / async endpoint
    cold: bool = False  # migration / script / test only
    target: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lead(self) -> Finding:
        return self.findings[0]


def short_ids(findings: list[Finding]) -> dict[int, str]:
    """`id(finding) -> "F<n>"` in sorted order."""
    ordered = sorted(findings, key=Finding.sort_key)
    return {id(f): f"F{i}" for i, f in enumerate(ordered, 1)}


def _ctx_str(ctx: dict[str, Any], *keys: str) -> str:
    for k in keys:
        v = ctx.get(k)
        if v in (None, "", [], {}):
            continue
        if isinstance(v, (list, tuple)):
            return ",".join(str(x) for x in v)
        if isinstance(v, dict):
            continue
        return str(v)
    return ""


def _chain_end(ctx: dict[str, Any]) -> str:
    """The deepest project function of a call chain: where the fix goes.

    Chains list qualified names from the called function down to the blocking call, often ending
    with the call itself; then the function before it is the one to change."""
    chain = ctx.get("chain")
    if isinstance(chain, str) and chain:
        chain = re.split(r"\s*(?:->|→|>)\s*", chain)
    if not isinstance(chain, (list, tuple)) or not chain:
        return ""
    steps = [str(c) for c in chain if c not in (None, "")]
    if len(steps) >= 2 and steps[-1] == str(ctx.get("call", "")):
        return steps[-2]
    return steps[-1] if steps else ""


def target_of(f: Finding) -> tuple[str, ...]:
    """What one fix for `f` changes (see the module docstring)."""
    ctx = f.context if isinstance(f.context, dict) else {}
    explicit = _ctx_str(ctx, "root_cause", "group")
    if explicit:
        return ("explicit", explicit)
    if f.category == "missing-index":
        table = _ctx_str(ctx, "table", "model")
        column = _ctx_str(ctx, "columns", "column", "fields", "field")
        if table and column:
            return ("index", table, column)
    elif f.category == "blocking-io":
        end = _chain_end(ctx)
        call = _ctx_str(ctx, "call")
        helper = _ctx_str(ctx, "helper", "blocking_function")
        if end or helper:
            return ("blocking", call, helper or end)
    elif f.category == "n-plus-one":
        relation = _ctx_str(ctx, "relation", "field", "attribute", "call")
        model = _ctx_str(ctx, "model")
        if relation:
            return ("n+1", f.path, f.symbol, model, relation)
    elif f.category == "unvalidated-input":
        return ("sink", f.path, str(f.line), _ctx_str(ctx, "sink"))
    if f.related:
        r = f.related[0]
        return ("related", r.path, str(r.line))
    return ("site", f.path, str(f.line))


def _describe_target(f: Finding) -> str:
    ctx = f.context if isinstance(f.context, dict) else {}
    if f.category == "missing-index":
        table = _ctx_str(ctx, "model", "table")
        column = _ctx_str(ctx, "field", "fields", "column", "columns")
        if table and column:
            return f"{table}.{column}"
    if f.category == "blocking-io":
        call = _ctx_str(ctx, "call")
        helper = _ctx_str(ctx, "helper", "blocking_function") or _chain_end(ctx)
        return f"{call} in {helper}" if call and helper and helper != call else call
    if f.category == "n-plus-one":
        model = _ctx_str(ctx, "model")
        rel = _ctx_str(ctx, "relation", "field", "attribute", "call")
        if rel:
            return f"{model}.{rel}" if model and "." not in rel else rel
    if f.category == "unvalidated-input":
        return _ctx_str(ctx, "sink")
    return ""


def is_hot(f: Finding) -> bool:
    """On a request path: the context says so, or request data is the finding's very source."""
    ctx = f.context if isinstance(f.context, dict) else {}
    if ctx.get("request_path") is False:
        return False
    if any(ctx.get(k) for k in _HOT_KEYS):
        return True
    return f.category == "unvalidated-input" and not _SCRIPT_PATH.search(f.path)


def is_cold(f: Finding) -> bool:
    """Runs only in a migration, a script or a test. Context keys count only as flags (`True`):
    a missing-index finding's `migration` key is the migration to write, not where it runs."""
    ctx = f.context if isinstance(f.context, dict) else {}
    if any(ctx.get(k) is True for k in _SCRIPT_KEYS):
        return True
    return bool(_SCRIPT_PATH.search(f.path)) and not is_hot(f)


def _rank(value: str, scale: tuple[str, ...], default: int) -> int:
    return scale.index(value) if value in scale else default


def group_findings(findings: list[Finding], ids: dict[int, str] | None = None) -> list[Group]:
    """Root-cause groups, highest priority first (ties: more sites, then position)."""
    ids = ids or short_ids(findings)
    buckets: dict[tuple[str, ...], list[Finding]] = {}
    for f in sorted(findings, key=Finding.sort_key):
        buckets.setdefault((f.rule, *target_of(f)), []).append(f)
    groups: list[Group] = []
    for key, members in buckets.items():
        sev = max((m.severity for m in members), key=lambda s: _rank(s, SEVERITIES, 1))
        conf = max((m.confidence for m in members), key=lambda c: _rank(c, CONFIDENCES, 1))
        hot = any(is_hot(m) for m in members)
        cold = all(is_cold(m) for m in members)
        sev_rank = _rank(sev, SEVERITIES, 1)
        level = sev_rank
        if _rank(conf, CONFIDENCES, 2) == 0:
            level -= 1
        if hot:
            level += 1
        if cold:
            level -= 1
        level = max(0, min(3, level))
        # order: priority, then severity, request path, confidence, number of sites
        score = (level * 1000 + sev_rank * 100 + hot * 10 + _rank(conf, CONFIDENCES, 1) * 2
                 + min(len(members), 9) * 0.1)
        g = Group(
            key=key, findings=members, ids=[ids[id(m)] for m in members], rule=members[0].rule,
            category=members[0].category, severity=sev, confidence=conf, hot=hot, cold=cold,
            priority=PRIORITIES[3 - level], score=score, target=_describe_target(members[0]),
        )
        groups.append(g)
    groups.sort(key=lambda g: (-g.score, g.findings[0].sort_key()))
    return groups


def group_for_ids(groups: list[Group]) -> dict[str, Group]:
    return {fid: g for g in groups for fid in g.ids}
