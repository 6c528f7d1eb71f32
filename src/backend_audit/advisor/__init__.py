"""The advisor: a prioritized, trade-off-explained remediation report for a scan's findings.

`build_report(result, catalog, opts)` returns a JSON-ready dict (it goes under `"report"` in the
JSON output; `render.report_markdown` turns it into Markdown for the text, markdown and PR-comment
outputs). With an `ANTHROPIC_API_KEY` and `opts.use_llm`, the persona model writes it (see
`llm.py`); otherwise, and on any API trouble, the offline advisor does (see `offline.py`) and a
warning goes to stderr. It never raises for API trouble and never touches the findings.

Report schema (version 1)::

    {
      "schema_version": 1,
      "source": "llm" | "offline" | "mixed",   # who wrote the items ("mixed": model + offline cover)
      "model": "claude-..." | null,           # the model asked, null when offline
      "prompt_version": "2026-11-26.1",
      "summary": "executive summary (plain text)",
      "items": [                              # highest priority first
        {
          "id": "R1",                         # item id, in report order
          "priority": "P0" | "P1" | "P2" | "P3",   # P0 fix now ... P3 when convenient
          "findings": ["F1", "F4"],           # short finding ids this item covers (see "findings" below)
          "rules": ["BA201"], "category": "missing-index",
          "title": "...",
          "locations": [{"path": "app/views.py", "line": 12, "id": "F1"}],  # "id" may be absent
          "impact": "latency / load / risk",
          "fix": "Markdown with a fenced code block",
          "tradeoffs": "...", "alternatives": "...",
          "tests": "...", "rollout": "...", "monitoring": "...",
          "effort": "S" | "M" | "L",
          "source": "llm" | "offline"         # "offline": the model left these findings out
        }
      ],
      "findings": {"F1": {"fingerprint": "...", "rule": "BA201", "path": "app/views.py", "line": 12}},
      "warnings": ["why the model's report was not used, or which items were dropped"],
      "stats": {"findings": 5, "groups": 2, "sent_groups": 2, "input_tokens": 1234,
                "token_count": "api" | "estimate" | "cache" | null, "from_cache": false, "requests": 2}
    }

Short finding ids (`F1`, `F2`, ...) number the findings in their sorted order (path, line, column,
rule); each maps to the finding's fingerprint under `"findings"`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backend_audit.advisor.grouping import PRIORITIES, Group, group_findings, short_ids
from backend_audit.advisor.offline import executive_summary, offline_items
from backend_audit.advisor.prompt import PROMPT_VERSION
from backend_audit.catalog import Catalog
from backend_audit.findings import ScanResult

__all__ = ["PROMPT_VERSION", "SCHEMA_VERSION", "AdvisorOptions", "build_report"]

SCHEMA_VERSION = 1


@dataclass
class AdvisorOptions:
    """How the report is written. `settings` is the `[tool.backend-audit.advisor]` table:
    `max-output-tokens`, `max-groups`, `timeout`, `max-retries`, `cache-dir`, `reply-cache` (bool)."""

    use_llm: bool = True
    model: str | None = None
    max_llm_tokens: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None


def _setting(settings: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = settings.get(name, settings.get(name.replace("-", "_"), default))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        return default
    if kind in (int, float) and value <= 0 and name != "max-retries":
        return default
    return value


def _cache_dir(result: ScanResult, opts: AdvisorOptions) -> Path | None:
    settings = opts.settings if isinstance(opts.settings, dict) else {}
    if _setting(settings, "reply-cache", bool, True) is False:
        return None
    if opts.cache_dir:
        return Path(opts.cache_dir)
    if isinstance(settings.get("cache-dir"), str) and settings["cache-dir"]:
        return Path(settings["cache-dir"])
    env = os.environ.get("BACKEND_AUDIT_CACHE_DIR")
    if env:
        return Path(env) / "advisor"
    return Path(result.root or ".") / ".backend_audit_cache" / "advisor"


def _finding_index(result: ScanResult, ids: dict[int, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(result.findings, key=lambda f: f.sort_key()):
        out[ids[id(f)]] = {"fingerprint": f.fingerprint, "rule": f.rule, "path": f.path, "line": f.line}
    return out


ITEM_KEYS = ("id", "priority", "title", "findings", "rules", "category", "locations", "impact", "fix",
             "tradeoffs", "alternatives", "tests", "rollout", "monitoring", "effort", "source")


def _finish(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order by priority (stable: the model's order within a priority is kept), number R1.., and
    give every item the same keys in the same order."""
    items = sorted(items, key=lambda i: PRIORITIES.index(i["priority"]))
    out = []
    for n, item in enumerate(items, 1):
        item = {**item, "id": f"R{n}"}
        out.append({k: item.get(k, "" if k not in ("findings", "rules", "locations") else []) for k in ITEM_KEYS})
    return out


def _offline_report(result: ScanResult, catalog: Catalog, groups: list[Group], ids: dict[int, str],
                    warnings: list[str]) -> dict[str, Any]:
    items = _finish(offline_items(groups, catalog))
    return {
        "schema_version": SCHEMA_VERSION, "source": "offline", "model": None,
        "prompt_version": PROMPT_VERSION,
        "summary": executive_summary(result.findings, groups, items),
        "items": items, "findings": _finding_index(result, ids), "warnings": warnings,
        "stats": {"findings": len(result.findings), "groups": len(groups), "sent_groups": 0,
                  "input_tokens": 0, "token_count": None, "from_cache": False, "requests": 0},
    }


def build_report(result: ScanResult, catalog: Catalog, opts: AdvisorOptions) -> dict[str, Any]:
    """The remediation report for `result.findings` (schema in the module docstring)."""
    ids = short_ids(result.findings)
    groups = group_findings(result.findings, ids)
    api_key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    if not result.findings or not opts.use_llm or not api_key:
        return _offline_report(result, catalog, groups, ids, [])
    try:
        return _llm_report(result, catalog, opts, groups, ids, api_key)
    except Exception as exc:  # API trouble of any kind: the offline report stands in
        from backend_audit.advisor.llm import warn

        message = f"the model's report is unavailable ({exc}); using the offline report"
        warn(message)
        return _offline_report(result, catalog, groups, ids, [message])


def _llm_report(result: ScanResult, catalog: Catalog, opts: AdvisorOptions, groups: list[Group],
                ids: dict[int, str], api_key: str) -> dict[str, Any]:
    from backend_audit.advisor import llm
    from backend_audit.advisor.facts import project_facts

    s = opts.settings if isinstance(opts.settings, dict) else {}
    settings = llm.LLMSettings(
        model=opts.model or llm.DEFAULT_MODEL,
        max_input_tokens=opts.max_llm_tokens or _setting(s, "max-llm-tokens", int, llm.DEFAULT_MAX_INPUT_TOKENS),
        max_output_tokens=_setting(s, "max-output-tokens", int, llm.DEFAULT_MAX_OUTPUT_TOKENS),
        max_groups=_setting(s, "max-groups", int, llm.DEFAULT_MAX_GROUPS),
        timeout=_setting(s, "timeout", float, llm.DEFAULT_TIMEOUT),
        max_retries=_setting(s, "max-retries", int, llm.DEFAULT_MAX_RETRIES),
        cache_dir=_cache_dir(result, opts), api_key=api_key,
        spinner=sys.stderr.isatty() and not os.environ.get("CI"),
    )
    outcome = llm.request_report(groups, catalog, project_facts(result), settings, PROMPT_VERSION)
    llm.validate_shape(outcome.reply)
    by_id = {ids[id(f)]: f for f in result.findings}
    sent = {fid: by_id[fid] for fid in outcome.sent_ids if fid in by_id}
    items, dropped = llm.validate_items(outcome.reply, sent)
    warnings = list(outcome.warnings)
    if dropped:
        message = f"dropped {len(dropped)} item(s) of the model's report: " + "; ".join(dropped[:5])
        llm.warn(message)
        warnings.append(message)
    if not items:
        raise llm.AdvisorLLMError("no usable item in the model's reply")
    covered = {fid for item in items for fid in item["findings"]}
    rest: list[Group] = []
    for g in groups:
        keep = [(fid, f) for fid, f in zip(g.ids, g.findings) if fid not in covered]
        if keep:
            rest.append(replace(g, ids=[k for k, _ in keep], findings=[f for _, f in keep]))
    unsent = len({fid for g in rest for fid in g.ids} - set(sent))
    if unsent:
        warnings.append(f"{unsent} finding(s) beyond the token budget or group limit are covered by the offline advisor")
    summary = outcome.reply["summary"].strip()
    if rest:
        n_rest = sum(len(g.ids) for g in rest)
        summary += (f"\n\n{n_rest} more finding{'s are' if n_rest != 1 else ' is'} covered by items written offline "
                    "from the rule catalog (marked offline).")
    all_items = _finish(items + offline_items(rest, catalog))
    return {
        "schema_version": SCHEMA_VERSION, "source": "mixed" if rest else "llm", "model": settings.model,
        "prompt_version": PROMPT_VERSION, "summary": summary,
        "items": all_items, "findings": _finding_index(result, ids), "warnings": warnings,
        "stats": {"findings": len(result.findings), "groups": len(groups),
                  "sent_groups": sum(1 for g in groups if any(fid in sent for fid in g.ids)),
                  "input_tokens": outcome.input_tokens, "token_count": outcome.token_count,
                  "from_cache": outcome.from_cache, "requests": outcome.requests},
    }
