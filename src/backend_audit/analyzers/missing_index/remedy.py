"""Messages and the exact schema change for each finding, in the project's own idiom.

Django: `db_index=True` or a `Meta.indexes` entry, shipped with `AddIndexConcurrently` on
PostgreSQL; SQLAlchemy: `index=True` / `Index(...)` with Alembic
`op.create_index(..., postgresql_concurrently=True)`; SQL: `CREATE INDEX CONCURRENTLY`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend_audit.analyzers.missing_index.builders import SchemaBuilder
from backend_audit.analyzers.missing_index.rules import Draft
from backend_audit.analyzers.missing_index.schema import Schema
from backend_audit.index.orm import DJANGO, SQLALCHEMY, OrmIndex


@dataclass
class Text:
    message: str
    index_change: str
    migration: str
    index_name: str
    model: str = ""
    definitions: list[tuple[str, int, str]] = field(default_factory=list)


def _plain(col: str) -> str:
    return col.split("(", 1)[1].rstrip(")") if "(" in col else col


class Remedy:
    def __init__(self, schema: Schema, orm: OrmIndex, dialect: str, builder: SchemaBuilder):
        self.schema = schema
        self.orm = orm
        self.dialect = dialect
        self.builder = builder

    def index_name(self, table: str, cols: tuple[str, ...], suffix: str = "idx") -> str:
        base = "_".join([table] + [_plain(c) for c in cols])
        name = f"{base}_{suffix}"
        return name if len(name) <= 30 else f"{base[:25]}_{suffix}"

    def field_of(self, model: str | None, column: str) -> str:
        m = self.orm.model(model)
        if m is None:
            return column
        for f in m.table_fields.values():
            if (f.column or f.name).lower() == column:
                return f.name
        return column

    def describe(self, d: Draft) -> Text:
        t = self.schema.table(d.table)
        m = self.orm.model(d.model)
        name = self.index_name(d.table, d.columns, "uniq" if d.rule == "BA204" else ("trgm" if d.rule == "BA205" else "idx"))
        defs: list[tuple[str, int, str]] = []
        for col in d.columns:
            c = t.columns.get(_plain(col)) if t else None
            if c is not None and c.path:
                defs.append((c.path, c.line, f"column {d.table}.{c.name} is defined here"))
        if not defs and t is not None and t.path:
            defs.append((t.path, t.line, f"table {d.table} is defined here"))
        fields = [self.field_of(d.model, _plain(c)) for c in d.columns]
        framework = m.framework if m else (t.framework if t else "sql")
        change, migration = self.change(d, framework, m.name if m else "", fields, name)
        cols = ", ".join(d.columns)
        label = f"{m.name}.{fields[0]}" if m else f"{d.table}.{_plain(d.columns[0])}"
        msg = self.message(d, label, cols)
        if d.rule == "BA208" and d.index is not None and d.index.path:
            defs.insert(0, (d.index.path, d.index.line, f"covered by {d.index.declared or d.index.keys}"))
        if d.rule == "BA207" and d.index is not None and d.index.path:
            defs.insert(0, (d.index.path, d.index.line, f"composite index ({', '.join(d.index.keys)}) leads with {d.index.keys[0]}"))
        return Text(msg, change, migration, name, m.qualified if m else "", defs)

    def message(self, d: Draft, label: str, cols: str) -> str:
        where = f"`{d.lookup}` " if d.lookup and d.lookup != label else ""
        if d.rule == "BA201":
            return (f"Query filters {where}on {label} ({d.table}.{_plain(d.columns[0])}) and no index serves it: "
                    f"a full scan of {d.table} on every call; add an index on ({cols})")
        if d.rule == "BA202":
            src = "Meta.ordering sorts" if d.lookup == "Meta.ordering" else "Query sorts"
            return (f"{src} {d.table} by {_plain(d.columns[0])} with no index to read in that order: every call "
                    f"sorts the whole table; add an index on ({cols})")
        if d.rule == "BA203":
            return (f"Foreign key {d.table}({cols}) -> {d.extra.get('ref_table', '?')} has no index "
                    f"({self.dialect} does not create one): joins from the parent and ON DELETE checks scan {d.table}")
        if d.rule == "BA204":
            how = d.extra.get("method", "get_or_create")
            return (f"{how} on {label} ({cols}) relies on uniqueness that no unique constraint enforces: concurrent "
                    f"requests create duplicates and the lookup scans {d.table}; add a unique constraint on ({cols})")
        if d.rule == "BA205":
            return (f"Substring search {where}on {label} (LIKE '%...%') cannot use a B-tree index: a full scan of "
                    f"{d.table}; add a trigram (GIN) index or a full-text search")
        if d.rule == "BA206" and d.usage == "ilike":
            return (f"Case-insensitive match (ILIKE) {where}on {label}: a plain B-tree index on {_plain(d.columns[0])} "
                    f"cannot serve it; add an expression index on {d.columns[0]} (and compare lower() to lower()) "
                    f"or a trigram (GIN) index")
        if d.rule == "BA206":
            return (f"Query applies {d.columns[0]} {where}to the column: a plain index on {_plain(d.columns[0])} "
                    f"cannot serve it; add an expression index on {d.columns[0]}")
        if d.rule == "BA207":
            ix = d.index
            lead = ix.keys[0] if ix else "?"
            return (f"Query filters {where}on {label} but the only index containing it, "
                    f"({', '.join(ix.keys) if ix else cols}), leads with {lead}, which the query does not constrain; "
                    f"add an index that leads with {_plain(d.columns[0])}")
        if d.rule == "BA208":
            keep = d.index
            r = d.redundant
            what = r.declared or f"index ({cols})" if r else f"index ({cols})"
            return (f"Redundant index {what} on {d.table}: {('the same as ' if keep and keep.keys == d.columns else 'a prefix of ')}"
                    f"{keep.declared if keep and keep.declared else keep.keys if keep else '?'}; it costs every write and serves no extra query")
        return "Missing index"

    def change(self, d: Draft, framework: str, model: str, fields: list[str], name: str) -> tuple[str, str]:
        cols = list(d.columns)
        pg = self.dialect == "postgresql"
        conc = " CONCURRENTLY" if pg else ""
        if d.rule == "BA208":
            r = d.redundant
            if framework == DJANGO:
                return (f"Remove {r.declared if r else 'the redundant index'} from {model}",
                        "makemigrations; on PostgreSQL ship RemoveIndexConcurrently")
            if framework == SQLALCHEMY:
                return (f"Remove {r.declared if r else 'the redundant index'} from {model}",
                        f"op.drop_index({(r.name if r and r.name else name)!r}, table_name={d.table!r}"
                        f"{', postgresql_concurrently=True' if pg else ''})")
            return (f"DROP INDEX{conc} {r.name if r and r.name else name};", "run outside a transaction on PostgreSQL")
        if framework == DJANGO:
            if d.rule == "BA204":
                change = (f"class Meta:\n    constraints = [models.UniqueConstraint(fields={fields!r}, name={name!r})]")
                return change, "makemigrations; deduplicate existing rows first; on PostgreSQL build the index with " \
                               "CREATE UNIQUE INDEX CONCURRENTLY and attach it"
            if d.rule == "BA205":
                change = (f"from django.contrib.postgres.indexes import GinIndex\nclass Meta:\n    indexes = "
                          f"[GinIndex(fields={fields!r}, name={name!r}, opclasses=['gin_trgm_ops'])]")
                return change, "TrigramExtension() in a migration, then AddIndexConcurrently (atomic = False)"
            if d.rule == "BA206":
                fn = cols[0].split("(", 1)[0]
                fn = _DJANGO_FUNCS.get(fn, fn.capitalize())
                change = (f"from django.db.models.functions import {fn}\nclass Meta:\n    indexes = "
                          f"[models.Index({fn}({fields[0]!r}), name={name!r})]")
                return change, self.django_migration(model)
            if len(fields) == 1 and d.rule in ("BA201", "BA202", "BA207"):
                mf = self.orm.model(d.model).table_fields.get(fields[0]) if self.orm.model(d.model) else None
                cls = mf.field_type.rsplit(".", 1)[-1] if mf is not None else "<Field>"
                if mf is not None and mf.kw("db_index") is False:
                    change = f"remove db_index=False from {model}.{fields[0]} ({cls})"
                else:
                    change = f"{fields[0]} = models.{cls}(..., db_index=True)  # on {model}"
                if d.rule == "BA202" or d.usage == "order":
                    change = (f"class Meta:\n    indexes = [models.Index(fields={['-' + fields[0]]!r}, name={name!r})]"
                              f"  # or db_index=True on {model}.{fields[0]}")
                return change, self.django_migration(model)
            change = f"class Meta:\n    indexes = [models.Index(fields={fields!r}, name={name!r})]  # on {model}"
            return change, self.django_migration(model)
        if framework == "alembic" and d.rule != "BA208":
            if d.rule == "BA204":
                return (f"op.create_unique_constraint({name!r}, {d.table!r}, {cols!r})", "a new Alembic revision")
            return (f"op.create_index({name!r}, {d.table!r}, {cols!r}"
                    f"{', postgresql_concurrently=True' if pg else ''})",
                    "a new Alembic revision" + (" (inside op.get_context().autocommit_block())" if pg else ""))
        if framework in (SQLALCHEMY, "alembic"):
            if d.rule == "BA204":
                return (f"__table_args__ = (UniqueConstraint({', '.join(repr(c) for c in cols)}, name={name!r}),)",
                        f"op.create_unique_constraint({name!r}, {d.table!r}, {cols!r})")
            ops = ", postgresql_using='gin', postgresql_ops={" + repr(cols[0]) + ": 'gin_trgm_ops'}" \
                if d.rule == "BA205" else ""
            if d.rule == "BA206":
                fn, col = cols[0].split("(", 1)
                return (f"Index({name!r}, func.{fn}({model}.{col.rstrip(')')}))",
                        f"op.create_index({name!r}, {d.table!r}, [sa.text({cols[0]!r})]"
                        f"{', postgresql_concurrently=True' if pg else ''})")
            if len(cols) == 1 and d.rule != "BA205":
                change = f"{fields[0]} = mapped_column(..., index=True)  # on {model or d.table}"
            else:
                change = f"Index({name!r}, {', '.join(f'{model}.{f}' if model else repr(f) for f in fields)}{ops})"
            mig = (f"op.create_index({name!r}, {d.table!r}, {cols!r}{ops}"
                   f"{', postgresql_concurrently=True' if pg else ''})  # inside op.get_context().autocommit_block()"
                   if pg else f"op.create_index({name!r}, {d.table!r}, {cols!r})")
            return change, mig
        if d.rule == "BA204":
            return f"CREATE UNIQUE INDEX{conc} {name} ON {d.table} ({', '.join(cols)});", "deduplicate first"
        if d.rule == "BA205":
            return (f"CREATE EXTENSION IF NOT EXISTS pg_trgm;\nCREATE INDEX{conc} {name} ON {d.table} "
                    f"USING gin ({cols[0]} gin_trgm_ops);", "run outside a transaction")
        return f"CREATE INDEX{conc} {name} ON {d.table} ({', '.join(cols)});", \
            "run outside a transaction (CONCURRENTLY) to avoid blocking writes" if pg else "apply in a maintenance window"

    def django_migration(self, model: str) -> str:
        if self.dialect == "postgresql":
            return ("makemigrations, then replace AddIndex with "
                    "django.contrib.postgres.operations.AddIndexConcurrently and set atomic = False")
        return "makemigrations and migrate (the table is locked while the index builds)"


#: SQL function -> the django.db.models.functions class an expression index writes it with
_DJANGO_FUNCS = {"lower": "Lower", "upper": "Upper", "date": "TruncDate", "extract": "Extract", "cast": "Cast",
                 "coalesce": "Coalesce", "trim": "Trim", "length": "Length", "date_trunc": "Trunc"}
