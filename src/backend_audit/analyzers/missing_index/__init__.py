"""Missing-index analyzer (category `missing-index`, rules BA201-BA208).

Reads both sides from the repository: the schema the code defines (`builders.py` -> `schema.py`)
and the queries the code runs (`workload.py`), and reports the queries no index serves
(`rules.py`). SQL anywhere (strings in code, `.sql` files, migrations) is parsed with sqlglot in
`collect()` (`collect.py`, `sql.py`), so warm scans never import sqlglot.

Finding.context keys (for the remediation texts in rules/missing_index.toml): `table`, `columns`,
`model`, `field`, `index_change` (the exact code to add or remove), `migration` (how to ship it),
`dialect`, `sites` (every query site as "path:line"), `lookup`, `index_name`.
"""

from __future__ import annotations

from typing import Any

from backend_audit.analyzers.base import AnalysisContext, Analyzer, FileUnit
from backend_audit.analyzers.missing_index import collect as collect_mod
from backend_audit.analyzers.missing_index.builders import SchemaBuilder
from backend_audit.analyzers.missing_index.remedy import Remedy
from backend_audit.analyzers.missing_index.rules import Draft, RuleEngine
from backend_audit.analyzers.missing_index.schema import Index, Schema, fk_indexed
from backend_audit.analyzers.missing_index.workload import Workload
from backend_audit.findings import Finding, Related
from backend_audit.index.orm import DJANGO, orm_index
from backend_audit.parsing.summary import const_value

__all__ = ["MissingIndexAnalyzer"]


class MissingIndexAnalyzer(Analyzer):
    name = "missing_index"
    category = "missing-index"

    # ----- per file -------------------------------------------------------------------------
    def collect(self, unit: FileUnit) -> Any:
        try:
            if unit.kind == "sql":
                return collect_mod.sql_file_facts(unit.text)
            if unit.kind == "python" and unit.tree is not None:
                return collect_mod.python_facts(unit.tree, unit.text, unit.module, unit.lines)
        except Exception:  # odd input never stops a scan; BACKEND_AUDIT_DEBUG=1 shows the error
            import os

            if os.environ.get("BACKEND_AUDIT_DEBUG"):
                raise
            return None
        return None

    # ----- whole project --------------------------------------------------------------------
    def analyze(self, ctx: AnalysisContext) -> list[Finding]:
        facts = ctx.facts_of(self.name)
        data = ctx.catalog.section("missing_index")
        orm = orm_index(ctx.index, ctx.catalog)
        has_sql = any(isinstance(f, dict) and f.get("sql") for f in facts.values())
        if not orm.models and not has_sql:
            return []
        dialect = self.dialect(ctx, facts, data)
        builder = SchemaBuilder(ctx.index, orm, data, facts)
        schema = builder.build()
        if not schema.tables:
            return []
        if dialect == "mysql":
            mysql_fk_indexes(schema)
        workload = Workload(ctx.index, orm, schema, builder, data, facts, dialect)
        queries = workload.build()
        meta_ordering = self.meta_ordering(orm, builder)
        drafts = RuleEngine(schema, dialect, meta_ordering).run(queries)
        remedy = Remedy(schema, orm, dialect, builder)
        return self.findings(ctx, drafts, remedy, dialect)

    def dialect(self, ctx: AnalysisContext, facts: dict[str, Any], data: dict[str, Any]) -> str:
        opts = ctx.options.get("missing-index", {}) if isinstance(ctx.options, dict) else {}
        configured = opts.get("dialect") if isinstance(opts, dict) else None
        names = data.get("dialect_names", {})
        if isinstance(configured, str) and configured:
            return names.get(configured.lower(), configured.lower())
        votes: dict[str, int] = {}
        drivers: dict[str, int] = {}
        for path, f in sorted(facts.items()):
            if not isinstance(f, dict):
                continue
            for hint in f.get("dialects", []):
                if hint.startswith("driver:"):
                    d = data.get("driver_dialects", {}).get(hint[7:])
                    if d:
                        drivers[d] = drivers.get(d, 0) + 1
                else:
                    d = names.get(hint)
                    if d:
                        weight = 1 if "test" in path.lower() else 3
                        votes[d] = votes.get(d, 0) + weight
        pool = votes or drivers
        if not pool:
            return data.get("default_dialect", "postgresql")
        non_sqlite = {k: v for k, v in pool.items() if k != "sqlite"}
        pool = non_sqlite or pool
        return max(sorted(pool), key=lambda k: pool[k])

    @staticmethod
    def meta_ordering(orm: Any, builder: SchemaBuilder) -> dict[str, tuple[str, int, list[str]]]:
        out: dict[str, tuple[str, int, list[str]]] = {}
        for m in orm.models.values():
            if m.framework != DJANGO or m.abstract or "ordering" not in m.meta:
                continue
            val = const_value(m.meta["ordering"])
            if isinstance(val, str):
                val = [val]
            if not isinstance(val, list) or not val or not isinstance(val[0], str) or "__" in val[0] or val[0] == "?":
                continue
            col = builder.column_of(m, val[0])
            table = builder.model_table.get(m.qualified)
            if not col or not table:
                continue
            line = m.meta_lines.get("ordering", m.line)
            # an ordering inherited from an abstract base is declared in the base's file
            path = m.path
            for anc in builder.index.mro(m.qualified):
                base = orm.models.get(anc)
                if base is not None and "ordering" in base.meta and base.meta_lines.get("ordering") == line \
                        and (anc == m.qualified or base.abstract):
                    path = base.path
            out[table] = (path, line, [col])
        return out

    def findings(self, ctx: AnalysisContext, drafts: list[Draft], remedy: Remedy, dialect: str) -> list[Finding]:
        groups: dict[tuple, list[Draft]] = {}
        for d in drafts:
            groups.setdefault(d.key, []).append(d)
        out: list[Finding] = []
        for members in groups.values():
            # Meta.ordering first: it is the cause for every queryset that keeps the default order
            members.sort(key=lambda d: (d.kind != "django-meta", d.path, d.line, d.col))
            first = members[0]
            try:
                out.append(self.finding(ctx, first, members, remedy, dialect))
            except Exception:  # a finding that cannot be described is dropped, never a crash
                continue
        return out

    def finding(self, ctx: AnalysisContext, d: Draft, members: list[Draft], remedy: Remedy, dialect: str) -> Finding:
        text = remedy.describe(d)
        related: list[Related] = []
        seen = {(d.path, d.line)}
        for other in members[1:]:
            if (other.path, other.line) not in seen:
                seen.add((other.path, other.line))
                related.append(Related(other.path, other.line, "the same unindexed access"))
        for other in members:
            site = other.extra.get("site")
            if site and tuple(site) not in seen:
                seen.add(tuple(site))
                related.append(Related(site[0], site[1], "a queryset that keeps Meta.ordering"))
        for loc in text.definitions:
            if (loc[0], loc[1]) not in seen and loc[0]:
                seen.add((loc[0], loc[1]))
                related.append(Related(loc[0], loc[1], loc[2]))
        sites = [f"{m.path}:{m.line}" for m in members]
        context = {"table": d.table, "columns": list(d.columns), "model": text.model or "", "field": d.field or "",
                   "index_change": text.index_change, "migration": text.migration, "dialect": dialect,
                   "sites": sites, "lookup": d.lookup or "", "index_name": text.index_name}
        return ctx.finding(d.rule, d.path, d.line, d.col, d.end_line or d.line, d.end_col, text.message,
                           related=related, symbol=d.symbol, context=context)


def mysql_fk_indexes(schema: Schema) -> None:
    """InnoDB creates an index for every foreign key that has none: add them to the schema."""
    for t in schema.tables.values():
        for fk in t.fks:
            if not fk_indexed(t, fk.columns):
                t.add_index(Index(t.name, fk.columns, path=fk.path, line=fk.line, source="mysql-fk", implicit=True,
                                  declared="foreign key (InnoDB index)"))
