"""The offline advisor: a deterministic report from the rule catalog and each finding's context.

It needs no network and no key, and it is the fallback for every LLM failure, so it must read like
advice on its own: each root-cause group becomes one item whose fix is the rule's `remediation`
text filled with the finding's context (`{model}`, `{field}`, `{call}`, `{alternative}`, `{chain}`,
`{source}`, `{sink}`, ...), followed by the rule's fixed example; trade-offs come from the rule's
`tradeoffs`; impact, tests, rollout and monitoring notes come from per-category guidance below,
which a catalog file can override or extend with `[catalog.advisor.category.<category>]` or
`[catalog.advisor.rule.<RULE>]` tables holding the same keys (impact, alternatives, tests,
rollout, monitoring, effort).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from backend_audit.advisor.grouping import PRIORITIES, Group
from backend_audit.catalog import Catalog, RuleDoc
from backend_audit.findings import Finding

#: what a missing placeholder becomes, so a text never shows a raw `{field}`
_FALLBACK_WORDS = {
    "model": "the model", "field": "the field", "fields": "the fields", "column": "the column",
    "columns": "the columns", "table": "the table", "call": "the blocking call",
    "alternative": "an async-native equivalent", "chain": "the call chain", "source": "the request data",
    "sink": "the sink", "relation": "the related object", "function": "the function",
    "helper": "the helper", "loop": "the loop", "query": "the query", "request_path": "the request path",
    "view": "the view", "endpoint": "the endpoint", "queryset": "the queryset", "method": "the method",
    "param": "the parameter", "parameter": "the parameter", "variable": "the variable",
}

CATEGORY_GUIDANCE: dict[str, dict[str, str]] = {
    "n-plus-one": {
        "impact": ("Every row adds a database round trip: a page of 50 rows costs 51 queries where 2 "
                   "would do. Latency grows with the data, and connections stay checked out longer, "
                   "which is what exhausts the pool under load."),
        "alternatives": ("`select_related` / `joinedload` for single-valued relations (one JOIN); "
                         "`prefetch_related` / `selectinload` for collections (one extra `IN` query); an "
                         "annotation or aggregate when only a count or a sum is needed; a denormalised "
                         "counter for very hot pages."),
        "tests": ("Pin the query count around this code path with several rows: Django `assertNumQueries` "
                  "(pytest-django `django_assert_num_queries`), SQLAlchemy an event listener on "
                  "`before_cursor_execute`. Assert the count stays the same with 2 rows and with 20: that "
                  "is the regression test that keeps the N+1 from coming back."),
        "rollout": ("A normal deploy: eager loading changes how data is fetched, not what. For very large "
                    "result sets check memory, since all related rows load at once; paginate first."),
        "monitoring": ("Queries per request and p95 latency of the endpoint in your APM; alert when "
                       "queries per request regress."),
        "effort": "S",
    },
    "missing-index": {
        "impact": ("Without an index the database reads the whole table for this lookup: invisible at 10k "
                   "rows, seconds at 10M, and every scan competes with the rest of the workload for I/O "
                   "and buffer cache. The index costs a little on each write and some disk."),
        "alternatives": ("a composite index matching the filter and the ordering columns; a partial index "
                         "when the query always filters on a constant (`WHERE deleted_at IS NULL`); a "
                         "covering index (`INCLUDE`) for index-only scans; caching the lookup if it is "
                         "read far more than written."),
        "tests": ("The migration applies and reverses cleanly in CI; against a production-sized copy, "
                  "`EXPLAIN ANALYZE` of the query shows an index scan instead of a sequential scan."),
        "rollout": ("On a large table build the index without blocking writes: PostgreSQL `CREATE INDEX "
                    "CONCURRENTLY` (Django `AddIndexConcurrently` in a migration with `atomic = False`; "
                    "Alembic `op.create_index(..., postgresql_concurrently=True)` inside "
                    "`op.get_context().autocommit_block()`). Run it off-peak and check disk headroom; a "
                    "failed concurrent build leaves an INVALID index to drop and retry."),
        "monitoring": ("`pg_stat_user_indexes.idx_scan` for the new index grows and the query's mean time "
                       "drops in `pg_stat_statements` (MySQL: the slow query log); drop it if it stays unused."),
        "effort": "S",
    },
    "unvalidated-input": {
        "impact": ("Request data reaches the sink unchecked, so whoever sends the request controls what it "
                   "does. Depending on the sink that means data theft (SQL), remote code execution (shell, "
                   "eval, deserialisation), file disclosure (paths), phishing (open redirects) or access "
                   "to internal services (SSRF)."),
        "alternatives": ("an allow-list (enum, choices) when the set of valid values is known; a schema at "
                         "the boundary (DRF serializer, pydantic model, marshmallow, WTForms); the "
                         "framework's safe API instead of building the string (parameterised queries, "
                         "`url_has_allowed_host_and_scheme`, `subprocess.run([...])` without a shell)."),
        "tests": ("Negative tests with hostile input (quotes and `; DROP TABLE`, `../../etc/passwd`, "
                  "`$(id)`, an internal URL, a huge limit) that assert a 4xx and that the sink never runs; "
                  "keep a positive test for the valid case."),
        "rollout": ("Validation can reject requests that used to pass: if clients are not all yours, log "
                    "rejections (without the payload's secrets) for a release before enforcing, and "
                    "document the accepted format."),
        "monitoring": ("4xx validation errors per endpoint (alert on spikes, they are often probing); "
                       "security logs for rejected payloads."),
        "effort": "S",
    },
    "blocking-io": {
        "impact": ("While the call runs the event loop serves nothing else: every concurrent request on this "
                   "worker waits behind it. A 200 ms call at 50 requests/s becomes seconds of queueing, then "
                   "timeouts and failed health checks."),
        "alternatives": ("an async-native client; `await asyncio.to_thread(...)` (or `run_in_executor`) "
                         "where no async client exists; or a plain `def` endpoint so the framework runs it "
                         "in its thread pool (FastAPI/Starlette, Django)."),
        "tests": ("Run the path under asyncio debug mode (`PYTHONASYNCIODEBUG=1`, "
                  "`loop.slow_callback_duration = 0.05`) and fail the test on \"Executing ... took\" "
                  "warnings; add a test with a slow fake backend and concurrent requests showing that "
                  "the others are not delayed."),
        "rollout": ("An async client changes pooling and timeouts: create it once per application "
                    "(lifespan/startup), set explicit timeouts, close it on shutdown. `asyncio.to_thread` is "
                    "a safe first step, but its default pool is small (min(32, CPUs + 4) threads), so "
                    "size it for the load."),
        "monitoring": ("Event-loop lag (a periodic task measuring its own scheduling delay), p99 latency of "
                       "unrelated endpoints on the same worker, and thread-pool saturation if you offload."),
        "effort": "S",
    },
}

#: where a rule's fix differs from its category's usual one (removing an index, adding a timeout...)
RULE_GUIDANCE: dict[str, dict[str, str]] = {
    "BA106": {
        "alternatives": ("`bulk_update(rows, fields, batch_size=...)` / `bulk_create`; `queryset.update()` when "
                         "every row gets the same value; an `UPDATE ... FROM (VALUES ...)` for large batches."),
        "rollout": ("Bulk writes skip `save()` overrides and `pre_save`/`post_save` signals: check for receivers "
                    "and custom save logic before switching, and batch very large updates to keep locks short."),
    },
    "BA109": {
        "alternatives": ("a batch endpoint of the remote API; concurrent requests (`asyncio.gather` with a "
                         "semaphore) when no batch API exists; a cache in front of slow, stable lookups."),
        "tests": ("Mock the HTTP layer (responses / respx) and assert the number of outbound calls stays "
                  "constant as the item count grows."),
        "monitoring": "Outbound requests per inbound request and the remote API's latency and error rate.",
    },
    "BA114": {
        "alternatives": ("keep the eager load if a template, serializer or `__str__` reads the relation (check "
                         "before removing); `only()`/`defer()` to trim what is loaded instead."),
        "tests": ("Pin the query count of the view: removing the unused eager load must not raise it (if it "
                  "does, the relation was used after all)."),
        "rollout": "A normal deploy; watch the endpoint's query count for a regression.",
    },
    "BA204": {
        "alternatives": ("a partial unique index when uniqueness applies to a subset (e.g. active rows); "
                         "`get_or_create`/`INSERT ... ON CONFLICT` on top of the constraint to handle the race."),
        "tests": ("Two concurrent creates with the same value: exactly one succeeds and the other gets an "
                  "`IntegrityError` that the code turns into a clean 409/validation error."),
        "rollout": ("Find and merge existing duplicates first (the constraint build fails otherwise). On "
                    "PostgreSQL build the unique index `CONCURRENTLY`, then attach it with `ALTER TABLE ... ADD "
                    "CONSTRAINT ... UNIQUE USING INDEX`."),
        "monitoring": "IntegrityError rate on the write path after the deploy; it should be near zero.",
        "effort": "M",  # existing duplicates must be cleaned up first
    },
    "BA205": {
        "alternatives": ("a trigram GIN index (`pg_trgm`, `gin_trgm_ops`); full-text search (`tsvector` + GIN); "
                         "a prefix-only search (`LIKE 'abc%'`) that a B-tree with `text_pattern_ops` serves."),
        "rollout": ("`CREATE EXTENSION pg_trgm` needs the right privileges; build the GIN index `CONCURRENTLY`. "
                    "GIN indexes cost more on writes than B-trees: check the table's write rate."),
    },
    "BA208": {
        "alternatives": ("keep it when it backs a unique constraint or a foreign key the other index does not "
                         "cover; merge both into one composite index that serves every query."),
        "tests": ("`EXPLAIN` of the queries that used the dropped index still shows an index scan through the "
                  "remaining one."),
        "rollout": ("Confirm on every database (replicas too) that `pg_stat_user_indexes.idx_scan` for it stays "
                    "flat, then drop it without locking: `DROP INDEX CONCURRENTLY` (Django "
                    "`RemoveIndexConcurrently`); keep the `CREATE INDEX` statement at hand to restore it."),
        "monitoring": "Latency of the table's lookups after the drop (unchanged) and write latency (slightly lower).",
        "effort": "S",
    },
    "BA310": {
        "tests": "A request with `limit=1000000` returns at most the maximum page size; negative and non-numeric values get a 400.",
        "rollout": ("Clients asking for more rows now get fewer: document the maximum and return a next-page "
                    "link or cursor so they can page through."),
        "monitoring": "Response size and query time of the endpoint; 400s on the limit parameter.",
    },
    "BA403": {
        "alternatives": ("one shared client/session configured with default timeouts; a retry policy with "
                         "backoff for idempotent calls; a circuit breaker for a flaky peer."),
        "tests": ("Point the client at a socket that accepts and never answers and assert the call fails "
                  "within the timeout, and that the caller handles the timeout error."),
        "rollout": ("Pick timeouts from the peer's observed p99 plus headroom: too tight turns slow answers "
                    "into errors. Log timeouts per peer for a release before tightening."),
        "monitoring": "Timeouts and latency per remote peer; worker saturation during a peer's outage.",
    },
}

_GENERIC = {
    "impact": "This is a proven defect on the code path shown; it costs latency, load or risk until fixed.",
    "alternatives": "",
    "tests": "Add a regression test that reproduces the problem before fixing it.",
    "rollout": "A normal deploy.",
    "monitoring": "Watch error rates and latency of the affected code path after the deploy.",
    "effort": "S",
}

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")


def _value_text(key: str, value: Any) -> str | None:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value if v not in (None, "")]
        if not parts:
            return None
        return " -> ".join(parts) if key in ("chain", "flow", "path", "call_chain") else ", ".join(parts)
    if isinstance(value, dict):
        return None
    return str(value)


def fill(template: str, context: dict[str, Any]) -> str:
    """Fill `{placeholders}` from `context`; a missing one becomes a neutral phrase, never raises."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        key = m.group(1)
        text = _value_text(key, context.get(key)) if isinstance(context, dict) else None
        if text is not None:
            return text
        return _FALLBACK_WORDS.get(key, "the " + key.replace("_", " "))

    return _PLACEHOLDER.sub(sub, template or "")


def guidance(catalog: Catalog, rule: str, category: str) -> dict[str, str]:
    """Per-category guidance, overridden by `[catalog.advisor.category.*]` and `.rule.*` tables."""
    out = dict(_GENERIC)
    out.update(CATEGORY_GUIDANCE.get(category, {}))
    out.update(RULE_GUIDANCE.get(rule, {}))
    try:
        section = catalog.section("advisor")
    except Exception:  # pragma: no cover - a catalog without data
        section = {}
    for table in (section.get("category", {}).get(category), section.get("rule", {}).get(rule)):
        if isinstance(table, dict):
            out.update({k: v for k, v in table.items() if isinstance(v, str) and v.strip()})
    return out


def _first_paragraph(text: str, limit: int = 600) -> str:
    para = (text or "").strip().split("\n\n")[0].strip()
    para = " ".join(para.split())
    if len(para) > limit:
        cut = para[:limit].rsplit(". ", 1)[0]
        para = cut + ("." if not cut.endswith(".") else "")
    return para


def _code_block(text: str) -> str:
    text = (text or "").strip("\n")
    if not text.strip():
        return ""
    if "```" in text:
        return text
    return f"```python\n{text}\n```"


def _context_note(group: Group) -> str:
    lead = group.lead
    ctx = lead.context if isinstance(lead.context, dict) else {}
    where = _value_text("request_path", ctx.get("request_path") or ctx.get("route") or ctx.get("endpoint") or ctx.get("view"))
    if group.hot:
        if where and where not in ("yes", "no"):
            return f"It runs on a request path ({where}), so every request pays it."
        return "It runs on a request path, so every request pays it."
    if group.cold:
        return "It only runs in a migration, script or test, so it matters less than request-path code."
    return ""


def _effort(group: Group, base: str) -> str:
    order = ("S", "M", "L")
    level = order.index(base) if base in order else 0
    ctx = group.lead.context if isinstance(group.lead.context, dict) else {}
    if len(group.findings) > 3 or (group.category == "blocking-io" and ctx.get("chain")):
        level += 1
    if len({f.path for f in group.findings}) > 5:
        level += 1
    return order[min(level, 2)]


#: missing-index rollout advice when the analyzer knows the dialect
_INDEX_ROLLOUT_BY_DIALECT = {
    "postgresql": CATEGORY_GUIDANCE["missing-index"]["rollout"],
    "mysql": ("InnoDB builds secondary indexes online: `ALTER TABLE ... ADD INDEX ..., ALGORITHM=INPLACE, "
              "LOCK=NONE` keeps writes flowing (check replica lag on large tables, or use gh-ost / "
              "pt-online-schema-change). Run it off-peak and check disk headroom."),
    "sqlite": ("SQLite locks the database while it builds the index; on small files that is milliseconds, on "
               "large ones schedule it with the deploy. `ANALYZE` afterwards helps the planner use it."),
}


def _overridden(catalog: Catalog, group: Group) -> set[str]:
    try:
        section = catalog.section("advisor")
    except Exception:
        return set()
    keys: set[str] = set()
    for table in (section.get("category", {}).get(group.category), section.get("rule", {}).get(group.rule)):
        if isinstance(table, dict):
            keys.update(table)
    return keys


def _specific_code(ctx: dict[str, Any]) -> str:
    """Code the analyzer wrote for this very finding (e.g. the index declaration), if any."""
    change = ctx.get("index_change")
    if not isinstance(change, str) or not change.strip():
        return ""
    code = change.strip()
    migration = ctx.get("migration")
    if isinstance(migration, str) and "(" in migration and migration.strip() not in code:
        code += "\n\n# migration\n" + migration.strip()
    return code


def _title(rule: RuleDoc | None, group: Group) -> str:
    title = rule.title if rule else group.lead.message
    if group.target:
        title = f"{title}: {group.target}"
    n = len(group.findings)
    if n > 1:
        title += f" ({n} sites)"
    return title


def locations(group: Group) -> list[dict[str, Any]]:
    return [{"id": fid, "path": f.path, "line": f.line} for fid, f in zip(group.ids, group.findings)]


def offline_item(group: Group, catalog: Catalog) -> dict[str, Any]:
    """One report item for one root-cause group, from the rule docs and the lead finding's context."""
    rule = catalog.rules.get(group.rule)
    lead = group.lead
    ctx = dict(lead.context) if isinstance(lead.context, dict) else {}
    ctx.setdefault("path", lead.path)
    ctx.setdefault("line", lead.line)
    g = guidance(catalog, group.rule, group.category)

    # the rule's own "why" is the most specific account of the cost; the category text is the fallback
    why = _first_paragraph(fill(rule.why, ctx)) if rule and rule.why.strip() else ""
    impact_parts = [why or fill(g["impact"], ctx)]
    note = _context_note(group)
    if note:
        impact_parts.append(note)
    n = len(group.findings)
    if n > 1:
        impact_parts.append("One fix covers both sites." if n == 2 else f"One fix covers all {n} sites.")

    fix_parts: list[str] = []
    if rule:
        fix_parts.append(fill(rule.remediation or rule.fix, ctx).strip())
        specific = _specific_code(ctx)
        if specific:
            fix_parts.append("The change for this code:\n\n" + _code_block(specific))
        else:
            example = _code_block(rule.example_good)
            if example:
                fix_parts.append("For example:\n\n" + example)
    else:
        fix_parts.append(lead.message)
    where = ", ".join(f"`{f.path}:{f.line}`" for f in group.findings[:8])
    if len(group.findings) > 8:
        where += f" and {len(group.findings) - 8} more"
    fix_parts.append(f"Apply it at {where}.")

    rollout = fill(g["rollout"], ctx)
    dialect = str(ctx.get("dialect") or "").lower()
    if (group.category == "missing-index" and dialect in _INDEX_ROLLOUT_BY_DIALECT
            and "rollout" not in RULE_GUIDANCE.get(group.rule, {}) and "rollout" not in _overridden(catalog, group)):
        rollout = _INDEX_ROLLOUT_BY_DIALECT[dialect]
    return {
        "priority": group.priority,
        "findings": list(group.ids),
        "rules": sorted({f.rule for f in group.findings}),
        "category": group.category,
        "title": _title(rule, group),
        "locations": locations(group),
        "impact": " ".join(p for p in impact_parts if p),
        "fix": "\n\n".join(p for p in fix_parts if p),
        "tradeoffs": fill(rule.tradeoffs, ctx).strip() if rule else "",
        "alternatives": fill(g.get("alternatives", ""), ctx),
        "tests": fill(g["tests"], ctx),
        "rollout": rollout,
        "monitoring": fill(g["monitoring"], ctx),
        "effort": _effort(group, g.get("effort", "S")),
        "source": "offline",
    }


_CATEGORY_NAMES = {
    "n-plus-one": "N+1 queries", "missing-index": "missing indexes",
    "unvalidated-input": "unvalidated input", "blocking-io": "blocking I/O on the event loop",
}


def executive_summary(findings: list[Finding], groups: list[Group], items: list[dict[str, Any]]) -> str:
    """A few sentences a lead can read in ten seconds; deterministic."""
    if not findings:
        return "No problems found. Nothing to fix in the scanned code."
    cats = Counter(f.category for f in findings)
    parts = ", ".join(f"{n} {_CATEGORY_NAMES.get(c, c)}" for c, n in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0])))
    n_f, n_g = len(findings), len(groups)
    text = [(f"The scan proved {n_f} problem{'s' if n_f != 1 else ''} ({parts}) with "
             f"{n_g} root cause{'s' if n_g != 1 else ''}; the items below are ordered by what to fix first.")]
    prio = Counter(i["priority"] for i in items)
    labels = {"P0": "fix now", "P1": "fix this sprint", "P2": "schedule", "P3": "when convenient"}
    counts = "; ".join(f"{prio[p]} {p} ({labels[p]})" for p in PRIORITIES if prio[p])
    if counts:
        text.append(f"Priorities: {counts}.")
    if items:
        first = items[0]["priority"]
        kinds: Counter[str] = Counter()
        order: list[str] = []
        for i in items:
            if i["priority"] != first:
                break
            label = _kind_label(i)
            if label not in kinds:
                order.append(label)
            kinds[label] += 1
        shown = [f"{label} ({kinds[label]})" if kinds[label] > 1 else label for label in order[:4]]
        more = f", and {len(order) - 4} more kinds" if len(order) > 4 else ""
        text.append(f"Start with the {first} items: " + "; ".join(shown) + more + ".")
    hot = sum(1 for g in groups if g.hot)
    if hot:
        if hot == len(groups):
            where = "It sits" if hot == 1 else "All of them sit"
        else:
            where = f"{hot} of the {len(groups)} root causes sit" if hot > 1 else f"1 of the {len(groups)} root causes sits"
        text.append(f"{where} on request paths or async endpoints, where every request pays the cost.")
    text.append("Each item gives the fix with code, its trade-offs, the tests that prove it and how to roll it out.")
    return " ".join(text)


def _kind_label(item: dict[str, Any]) -> str:
    """The item's title without its target and site count: what kind of problem it is."""
    title = str(item.get("title", ""))
    return title.split(": ", 1)[0] if ": " in title else title.split(" (", 1)[0]


def offline_items(groups: list[Group], catalog: Catalog) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for g in groups:
        try:
            items.append(offline_item(g, catalog))
        except Exception:  # a broken rule text must not lose the finding
            items.append({
                "priority": g.priority, "findings": list(g.ids), "rules": [g.rule], "category": g.category,
                "title": g.lead.message, "locations": locations(g), "impact": "", "fix": g.lead.message,
                "tradeoffs": "", "alternatives": "", "tests": "", "rollout": "", "monitoring": "",
                "effort": "S", "source": "offline",
            })
    return items
