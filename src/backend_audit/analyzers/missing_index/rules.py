"""The BA2xx rules: the workload checked against the schema.

One *draft* per (query site, problem); drafts of the same missing index (same rule, table and
columns) become ONE finding at the first site, with every other site in `related`.

For each query and each table it touches:

* if any WHERE column of that table is served by an index (primary key, unique, Django's FK
  index, the leading column of a composite index, a partial index whose condition the query
  also constrains, an expression index), the database has an access path: nothing is reported;
* else the most useful unserved filter decides the rule: BA207 when the column sits behind the
  leading column of a composite index, BA206 for a function on the column (`lower(email)`,
  `__iexact`), BA205 for a leading-wildcard LIKE / `icontains`, BA201 otherwise; boolean and
  IS NULL filters alone are never reported (a B-tree index rarely helps them);
* with no filter at all, an ORDER BY (or `Meta.ordering` kept by the queryset) that no index
  serves is BA202.

BA203 (foreign key without an index), BA204 (uniqueness enforced in code) and BA208 (duplicate or
prefix-redundant indexes) look at the schema and at `get_or_create` / exists-then-create sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from backend_audit.analyzers.missing_index.schema import (
    Index,
    Schema,
    Table,
    fk_indexed,
    non_leading_index,
    serving_index,
    unique_covers,
)
from backend_audit.analyzers.missing_index.workload import Query, Usage, is_test_path

PRIORITY = {"eq": 0, "range": 1, "prefix": 2, "iexact": 3, "ilike": 3, "infix": 4, "join": 5}
#: a function-wrapped column (`func:date`, `func:lower`) ranks with iexact
_FUNC_PRIORITY = 3
#: aggregates compare groups (HAVING), not rows: no index question
_AGGREGATES = frozenset({"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "group_concat",
                         "bool_and", "bool_or", "every", "json_agg", "jsonb_agg", "stddev", "variance"})


@dataclass
class Draft:
    rule: str
    key: tuple
    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    symbol: str
    table: str
    columns: tuple[str, ...]
    usage: str
    lookup: str = ""
    kind: str = ""  # django, sqlalchemy, sql, schema
    model: str | None = None
    field: str | None = None
    index: Index | None = None  # BA207: the composite index; BA208: the index that covers it
    redundant: Index | None = None
    extra: dict[str, Any] = dc_field(default_factory=dict)


def _key(u: Usage) -> list[str]:
    """The index keys that can serve a usage (`iexact` / ILIKE are served by lower() or upper())."""
    if u.usage in ("iexact", "ilike"):
        return [f"upper({u.column})", f"lower({u.column})"]
    return [u.column]


def _is_func(usage: str) -> bool:
    return usage.startswith("func:")


def _served(t: Table, u: Usage, eq_cols: set[str], query_cols: set[str]) -> Index | None:
    if u.usage == "ilike":
        # a trigram index on the column serves ILIKE; so does an expression index on lower()/upper()
        ix = serving_index(t, u.column, "ilike", eq_cols, query_cols)
        if ix is not None and (ix.trigram or ix.method in ("gin", "gist")):
            return ix
    usage = "eq" if u.usage in ("iexact", "ilike") or _is_func(u.usage) else u.usage
    for k in _key(u):
        ix = serving_index(t, k, usage, eq_cols, query_cols)
        if ix is not None:
            return ix
    return None


def _plain(col: str) -> str:
    return col.split("(", 1)[1].rstrip(")") if "(" in col else col


class RuleEngine:
    def __init__(self, schema: Schema, dialect: str, meta_ordering: dict[str, tuple[str, int, list[str]]]):
        self.schema = schema
        self.dialect = dialect
        #: table -> (model path, Meta.ordering line, ordering columns)
        self.meta_ordering = meta_ordering
        self.drafts: list[Draft] = []

    def run(self, queries: list[Query]) -> list[Draft]:
        for q in queries:
            try:
                self.query(q)
            except Exception:
                continue
        self.foreign_keys()
        self.redundant_indexes()
        return [d for d in self.drafts if not is_test_path(d.path)]

    # ----- queries ------------------------------------------------------------------------------
    def query(self, q: Query) -> None:
        by_table: dict[str, list[Usage]] = {}
        for u in q.usages:
            by_table.setdefault(u.table, []).append(u)
        unique_cols: set[str] = set()
        if q.unique_in_code is not None and q.table:
            t = self.schema.table(q.table)
            method, cols, line, col, end_line, end_col = q.unique_in_code
            all_bool = all(self.col_type(t, c) == "bool" for c in cols) if t is not None else True
            if t is not None and not t.external and not all_bool and not unique_covers(t, cols):
                unique_cols = cols
                self.drafts.append(Draft("BA204", ("BA204", t.name, tuple(sorted(cols))), q.path, line, col, end_line,
                                         end_col, q.symbol, t.name, tuple(sorted(cols)), method, kind=q.kind,
                                         model=q.model, extra={"method": method}))
        where_tables = {u.table for u in q.usages if u.usage not in ("order", "group", "join")}
        for table, usages in by_table.items():
            t = self.schema.table(table)
            if t is None or t.external:
                continue
            self.table_usages(q, t, usages, unique_cols, where_tables)
        if q.uses_default_order and q.table and not q.explicit_order:
            self.default_order(q)

    def table_usages(self, q: Query, t: Table, usages: list[Usage], unique_cols: set[str],
                     where_tables: set[str]) -> None:
        eq_cols = {u.column for u in usages if u.usage in ("eq", "join")}
        query_cols = {_plain(u.column) for u in usages}
        ilike_ok = self.dialect != "mysql"  # MySQL's default collations are case-insensitive already
        filters = [u for u in usages if u.usage in ("eq", "range", "prefix", "iexact", "infix")
                   or (u.usage == "ilike" and ilike_ok)
                   or (_is_func(u.usage) and u.usage[5:] not in _AGGREGATES)]
        eq_cols = {u.column for u in usages if u.usage in ("eq", "join") and not u.in_or}
        and_filters = [u for u in filters if not u.in_or]
        groups: dict[int, list[Usage]] = {}
        for u in usages:
            if u.in_or:
                groups.setdefault(u.in_or, []).append(u)
        if any(_served(t, u, eq_cols, query_cols) for u in and_filters):
            return
        if q.opaque_filter:
            return  # a condition we cannot see may have the index
        if any(u.usage == "join" and not u.in_or and _served(t, u, eq_cols, query_cols) for u in usages) \
                and where_tables - {t.name}:
            return  # reached through an indexed join from a filtered table: few rows, no scan
        unserved = [g for g in groups.values()
                    if not any(u in filters and _served(t, u, eq_cols, query_cols) for u in g)]
        if groups and not unserved and not and_filters:
            return  # every branch of the OR has an index (a bitmap OR)
        filters = and_filters + [u for g in unserved for u in g if u in filters]
        if any(u.usage == "eq" and u.column in t.pk and not u.in_or for u in usages):
            return
        # booleans: too few distinct values for a B-tree; JSON/array/range values: a B-tree is not how they are indexed
        candidates = [u for u in filters if self.col_type(t, u.column) not in ("bool", "json")]
        if unique_cols and {u.column for u in candidates} <= unique_cols:
            return  # the BA204 fix (a unique constraint) is the index
        if not candidates:
            joins = [u for u in usages if u.usage == "join" and not _served(t, u, eq_cols, query_cols)
                     and self.col_type(t, u.column) != "bool"]
            if joins and not any(u.usage in ("eq", "range", "prefix", "isnull", "iexact", "infix", "neg", "bool")
                                 for u in usages) and where_tables - {t.name}:
                u = joins[0]
                self.add_query_draft("BA201", q, t, u, (u.column,))
                return
            if any(u.usage in ("eq", "range", "prefix", "iexact", "neg", "isnull") for u in usages):
                return  # only boolean / IS NULL / negated filters: an index rarely helps
            orders = [u for u in usages if u.usage == "order"]
            if where_tables - {t.name} or q.opaque_filter:
                return  # rows come from a filtered join partner: a sort of few rows, not of the table
            if orders and not _served(t, orders[0], eq_cols, query_cols):
                u = orders[0]
                self.add_query_draft("BA202", q, t, u, (u.column,))
            return
        candidates.sort(key=lambda u: PRIORITY.get(u.usage, _FUNC_PRIORITY if _is_func(u.usage) else 9))
        u = candidates[0]
        if u.usage == "infix":
            self.add_query_draft("BA205", q, t, u, (u.column,))
            return
        if u.usage in ("iexact", "ilike") or _is_func(u.usage):
            key = f"lower({_plain(u.column)})" if u.usage in ("iexact", "ilike") else u.column
            self.add_query_draft("BA206", q, t, u, (key,))
            return
        composite = non_leading_index(t, u.column)
        if composite is not None and u.usage in ("eq", "range", "prefix"):
            d = self.add_query_draft("BA207", q, t, u, (u.column,))
            d.index = composite
            return
        cols = [c.column for c in candidates if c.usage == "eq" and self.col_type(t, c.column) != "bool"]
        rng = [c.column for c in candidates if c.usage in ("range", "prefix")]
        suggestion = list(dict.fromkeys(cols + rng[:1]))
        orders = [o.column for o in usages if o.usage == "order"]
        if orders and not rng and orders[0] not in suggestion:
            suggestion.append(orders[0])
        self.add_query_draft("BA201", q, t, u, tuple(suggestion or [u.column]))

    def default_order(self, q: Query) -> None:
        """Querysets that keep `Meta.ordering` sort by it: reported once, at the Meta line."""
        t = self.schema.table(q.table or "")
        meta = self.meta_ordering.get(q.table or "")
        if t is None or t.external or meta is None:
            return
        path, line, cols = meta
        if q.opaque_filter or any(u.usage not in ("order", "group") for u in q.usages):
            return  # filtered querysets (on this table or through a join): decided by the filter
        col = cols[0]
        eq: set[str] = set()
        u = Usage(t.name, col, "order", line)
        if _served(t, u, eq, {col}) is not None or col in t.pk:
            return
        self.drafts.append(Draft("BA202", ("BA202", t.name, (col,)), path, line, 0, line, 0, "", t.name, (col,),
                                 "order", "Meta.ordering", kind="django-meta", model=t.model,
                                 extra={"site": (q.path, q.line)}))

    def col_type(self, t: Table, col: str) -> str:
        c = t.columns.get(_plain(col))
        return c.type if c is not None else "other"

    def add_query_draft(self, rule: str, q: Query, t: Table, u: Usage, columns: tuple[str, ...]) -> Draft:
        key_cols = (u.column,) if rule != "BA206" else columns
        d = Draft(rule, (rule, t.name, key_cols), q.path, u.line, u.col if u.line == q.line else 0,
                  u.end_line if u.line == q.line else u.line, u.end_col if u.line == q.line else 0, q.symbol, t.name,
                  columns, u.usage, u.lookup, kind=q.kind, model=t.model, field=u.field)
        self.drafts.append(d)
        return d

    # ----- schema rules -------------------------------------------------------------------------
    def foreign_keys(self) -> None:
        if self.dialect == "mysql":
            return  # InnoDB creates an index for every foreign key
        # a query that filters or joins on the unindexed foreign key already reports this missing
        # index at the query (one missing index is one finding); the FK definition is its related place
        queried = [d for d in self.drafts if d.rule in ("BA201", "BA202", "BA207")]
        for t in self.schema.tables.values():
            if t.external:
                continue
            seen: set[tuple[str, ...]] = set()
            for fk in t.fks:
                if fk.source == "django" or fk.columns in seen:
                    continue
                seen.add(fk.columns)
                if fk_indexed(t, fk.columns):
                    continue
                # the index the query's finding asks for leads with the FK columns: it serves both
                serving = next((d for d in queried if d.table == t.name
                                and d.columns[:len(fk.columns)] == fk.columns), None)
                if serving is not None:
                    serving.extra.setdefault("foreign_key", fk.ref_table)
                    continue
                self.drafts.append(Draft("BA203", ("BA203", t.name, fk.columns), fk.path, fk.line, 0, fk.line, 0, "",
                                         t.name, fk.columns, "fk", kind=fk.source, model=fk.model or t.model,
                                         field=fk.field, extra={"ref_table": fk.ref_table}))

    def redundant_indexes(self) -> None:
        for t in self.schema.tables.values():
            if t.external:
                continue
            flagged: set[int] = set()
            for a in t.indexes:
                for b in t.indexes:
                    if a is b or id(a) in flagged or id(b) in flagged:
                        continue
                    redundant = self.redundant(a, b)
                    if redundant is not None:
                        r, keep = redundant
                        if id(r) in flagged:
                            continue
                        flagged.add(id(r))
                        self.drafts.append(Draft("BA208", ("BA208", t.name, r.keys, r.line, r.path), r.path, r.line, 0,
                                                 r.line, 0, "", t.name, r.keys, "index", kind=r.source, model=t.model,
                                                 index=keep, redundant=r))

    @staticmethod
    def redundant(a: Index, b: Index) -> tuple[Index, Index] | None:
        """(the redundant index, the one that covers it) when `a` is redundant given `b`."""
        if a.method != b.method or a.method not in ("btree", "") or a.trigram or b.trigram:
            return None
        if a.owner and b.owner and a.owner != b.owner:
            return None  # two models that map one table: each declares its own view of the indexes
        if a.condition_columns != b.condition_columns or "?" in a.keys or "?" in b.keys:
            return None
        if a.keys == b.keys:
            if a.unique != b.unique or a.primary != b.primary:
                weak, strong = (a, b) if not (a.unique or a.primary) else (b, a)
                if weak.unique or weak.primary:
                    return None
            else:
                # identical twins: the later definition is the redundant one
                weak, strong = (a, b) if (a.path, a.line) > (b.path, b.line) else (b, a)
            if weak.implicit:
                if strong.implicit:
                    return None
                weak, strong = strong, weak
                if weak.unique or weak.primary:
                    return None
            return (weak, strong) if weak is a else None
        if len(a.keys) < len(b.keys) and b.keys[:len(a.keys)] == a.keys and not a.unique and not a.primary \
                and not a.implicit:
            return a, b
        return None
