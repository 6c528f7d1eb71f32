"""The N+1 analyzer (category `n-plus-one`, rules BA101-BA115).

Where each rule reports (the line a reviewer points at):

* code loops (BA101-BA110): the per-iteration access or call inside the loop;
* templates (BA111): the view's queryset (the expression that builds it), the template line in
  `related`;
* DRF serializers (BA112): the view's queryset (`queryset = ...`, the `get_queryset` return, or
  the expression passed to `Serializer(..., many=True)`), the serializer field/method in
  `related` -- the fix (`select_related`/`prefetch_related`) goes on that queryset, and a
  serializer shared by several views is only a problem for the views that do not load it;
* admin (BA113): the `list_display` line;
* unused eager loading (BA114): the `select_related`/`prefetch_related` call.

Modules: `collect` (per-file facts), `templates` (template scan), `values` + `querysets` (the
abstract evaluator: queryset provenance and per-row query semantics), `loops`, `views` (templates,
DRF, admin), `unused`, `fixes` (messages and exact fixes).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit
from backend_audit.findings import Finding

from .collect import collect_python
from .templates import collect_template

log = logging.getLogger(__name__)

#: a file without any of these cannot contribute a loop, a query or a view worth following
_INTERESTING = ("for ", "objects", "session", "execute", "select(", "query", "save(", "render", "Serializer",
                "admin", "get_queryset", "queryset", "request", "http", "cursor", "template", "View",
                "def ", "class ")


class NPlusOneAnalyzer(Analyzer):
    name = "n_plus_one"
    category = "n-plus-one"

    def collect(self, unit: FileUnit) -> Any:
        try:
            if unit.kind == "template":
                return collect_template(unit.text)
            if unit.kind != "python" or unit.tree is None:
                return None
            text = unit.text
            if "for " not in text and "return " not in text and "class " not in text:
                return None
            return collect_python(unit.tree)
        except (RecursionError, ValueError):  # pragma: no cover - pathological input
            return None

    def analyze(self, ctx: AnalysisContext) -> list[Finding]:
        from backend_audit.index.orm import orm_index

        from .loops import analyze_loops, analyze_param_loops
        from .querysets import Evaluator
        from .unused import analyze_unused
        from .views import analyze_views

        findings: list[Finding] = []
        seen: set = set()
        try:
            orm = orm_index(ctx.index, ctx.catalog)
        except Exception:  # pragma: no cover - the shared ORM index must never stop a scan
            log.exception("n_plus_one: ORM index failed")
            return findings
        facts = {p: f for p, f in ctx.facts_of(self.name).items() if isinstance(f, dict) and "functions" in f}
        ev = Evaluator(ctx.index, orm, ctx.catalog.section("n_plus_one"), facts)
        for step in (analyze_loops, analyze_param_loops, analyze_views, analyze_unused):
            try:
                step(ev, ctx, findings, seen)
            except RecursionError:  # pragma: no cover
                log.warning("n_plus_one: %s gave up on deeply recursive code", step.__name__)
            except Exception:  # pragma: no cover - an analyzer bug must not crash the scan
                if os.environ.get("BACKEND_AUDIT_DEBUG"):
                    raise
                log.exception("n_plus_one: %s failed", step.__name__)
        return findings


__all__ = ["NPlusOneAnalyzer"]
