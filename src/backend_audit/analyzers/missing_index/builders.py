"""Build the `Schema` from every source the repository has, in the order the database sees them.

1. ORM models (Django: fields, `db_index`, `unique`, FK auto-indexes, `Meta.indexes`,
   `unique_together`, `index_together`, `constraints`; SQLAlchemy: `index=True`, `unique=True`,
   `primary_key`, `__table_args__`, `Table(...)` items and module-level `Index(...)`).
2. SQL DDL in `.sql` files and in SQL strings outside migrations.
3. Migrations in order (Django by app and number, Alembic along `down_revision`): `AddIndex`,
   `AddConstraint`, `RemoveIndex`, `CreateModel` for models the repo no longer defines, `RunSQL`;
   `op.create_table`, `op.add_column`, `op.create_index`, `op.create_unique_constraint`,
   `op.create_foreign_key`, `op.drop_index`, `op.execute`. `downgrade()` and `reverse_sql` are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from backend_audit.analyzers.missing_index.schema import (
    Column,
    ForeignKeyDef,
    Index,
    Schema,
    Table,
)
from backend_audit.index.orm import DJANGO, SQLALCHEMY, ModelField, OrmIndex, OrmModel
from backend_audit.index.project import ProjectIndex
from backend_audit.parsing.summary import MODULE_SCOPE, Value, const_value, iter_values

_EXPR = re.compile(r"^\s*(\w+)\s*\(\s*\"?(\w+)\"?\s*\)\s*$")


def last(ref: str | None) -> str:
    return (ref or "").rstrip("()").rsplit(".", 1)[-1]


def str_list(v: Value | None) -> list[str]:
    val = const_value(v)
    if isinstance(val, str):
        return [val]
    if isinstance(val, list) and all(isinstance(x, str) for x in val):
        return list(val)
    return []


def field_type(f: ModelField, data: dict[str, Any]) -> str:
    if f.relation in ("fk", "o2o"):
        return "fk"
    name = last(f.field_type)
    for kind, names in data.get("field_types", {}).items():
        if name in names:
            return kind
    return "other"


class SchemaBuilder:
    def __init__(self, index: ProjectIndex, orm: OrmIndex, data: dict[str, Any], facts: dict[str, Any]):
        self.index = index
        self.orm = orm
        self.data = data
        self.facts = facts  # path -> collect() facts
        self.schema = Schema()
        self.model_table: dict[str, str] = {}  # model qualified -> table
        self._by_lower_name: dict[str, list[OrmModel]] | None = None

    # ----- entry ---------------------------------------------------------------------------
    def build(self) -> Schema:
        for m in self.orm.models.values():
            if m.framework == DJANGO and not m.abstract:
                _guarded(self.django_model, m)
        self.proxy_tables()
        for m in self.orm.models.values():
            if m.framework == SQLALCHEMY:
                _guarded(self.sqlalchemy_model, m)
        _guarded(self.sqlalchemy_module_indexes)
        for path in sorted(self.facts):
            if self.is_migration(path):
                continue
            for fact in self.facts[path].get("sql", []) if isinstance(self.facts[path], dict) else []:
                if fact.get("kind") != "query" and not fact.get("reverse"):
                    _guarded(self.apply_sql, fact, path)
        for path in self.migration_order():
            _guarded(self.apply_migration, path)
        self.add_catalog_tables()
        return self.schema

    def is_migration(self, path: str) -> bool:
        s = self.index.summaries.get(path)
        if s is None:
            return False
        return self.django_migration(s) or self.alembic_migration(s)

    @staticmethod
    def django_migration(s: Any) -> bool:
        return any(v.startswith("django.db.migrations") for v in s.imports.values()) and any(
            c.endswith("Migration") for c in s.classes)

    @staticmethod
    def alembic_migration(s: Any) -> bool:
        return any(v in ("alembic.op", "alembic") for v in s.imports.values()) and "upgrade" in s.functions

    # ----- precise lines -----------------------------------------------------------------------
    def call_line(self, path: str, function: str, item: Value, lo: int, hi: int) -> int | None:
        """The line of the call site that `item` (a call descriptor) describes, within [lo, hi]."""
        s = self.index.summaries.get(path)
        fn = s.functions.get(function) if s is not None else None
        if fn is None or item[0] != "call":
            return None
        for call in fn.calls:
            if lo <= call.line <= hi and call.ref == item[1] and call.args == item[2] and call.kwargs == item[3]:
                return call.line
        return None

    def column_line(self, path: str, function: str, name: str, lo: int, hi: int) -> int | None:
        """The line of `Column("name", ...)` inside a `Table(...)` / `op.create_table(...)` call."""
        s = self.index.summaries.get(path)
        fn = s.functions.get(function) if s is not None else None
        if fn is None:
            return None
        for call in fn.calls:
            if lo <= call.line <= hi and last(call.ref) == "Column" and call.args and \
                    const_value(call.args[0]) == name:
                return call.line
        return None

    def class_span(self, qualified: str) -> tuple[str, int, int] | None:
        info = self.index.classes.get(qualified)
        if info is None:
            return None
        return info.path, info.summary.line, info.summary.end_line

    # ----- Django models ---------------------------------------------------------------------
    def column_of(self, m: OrmModel, name: str) -> str | None:
        name = name.lstrip("-").split("__")[0]
        if name == "pk":
            t = self.schema.table(m.table or "")
            return t.pk[0] if t is not None and t.pk else "id"
        f = m.table_fields.get(name)
        if f is not None and f.relation not in ("m2m", "generic-relation", "gfk", "relationship"):
            return (f.column or f.name).lower()
        if name.endswith("_id"):
            f = m.table_fields.get(name[:-3])
            if f is not None and f.relation in ("fk", "o2o"):
                return (f.column or f.name).lower()
        if name == "id" and not any(x.kw("primary_key") for x in m.table_fields.values()):
            return "id"
        return None

    def _own(self, t: Table, model: str, before: int) -> None:
        for ix in t.indexes[before:]:
            if not ix.owner:
                ix.owner = model

    def django_model(self, m: OrmModel) -> None:
        t = self.schema.table(m.table or "") if m.table else None
        before = len(t.indexes) if t is not None else 0
        self._django_model(m)
        t = self.schema.table(m.table or "") if m.table else None
        if t is not None:
            self._own(t, m.qualified, before)

    def _django_model(self, m: OrmModel) -> None:
        if not m.table:
            return
        if m.meta_value("proxy") is True:
            return  # a proxy shares its concrete parent's table (see proxy_tables)
        t = self.schema.ensure(m.table, model=m.qualified, framework=DJANGO, path=m.path, line=m.line)
        if m.meta_value("managed") is False:
            t.external = True  # the table is managed outside Django (a view, a legacy table): not ours to index
        t.model = m.qualified
        self.model_table[m.qualified] = t.name
        indexed_default = set(self.data.get("django_indexed_by_default", []))
        pk_field = None
        for f in m.table_fields.values():
            if f.relation in ("m2m", "generic-relation", "gfk"):
                continue
            col = (f.column or f.name).lower()
            t.add_column(Column(col, f.name, field_type(f, self.data), f.path, f.line))
            if f.kw("primary_key"):
                pk_field = f
                t.pk = (col,)
                t.add_index(Index(t.name, (col,), unique=True, primary=True, path=f.path, line=f.line,
                                  source="django-model", implicit=True, declared="primary_key=True"))
            elif f.kw("unique") or f.relation == "o2o":
                t.add_index(Index(t.name, (col,), unique=True, path=f.path, line=f.line, source="django-model",
                                  implicit=f.relation == "o2o", declared="unique=True" if f.kw("unique") else "OneToOneField"))
            elif f.kw("db_index") is True:
                # on a ForeignKey db_index=True only restates Django's default: the same implicit index
                t.add_index(Index(t.name, (col,), path=f.path, line=f.line, source="django-model",
                                  implicit=f.relation == "fk", declared="db_index=True"))
            elif f.kw("db_index") is None and (f.relation == "fk" or last(f.field_type) in indexed_default):
                t.add_index(Index(t.name, (col,), path=f.path, line=f.line, source="django-model", implicit=True,
                                  declared="ForeignKey (indexed by Django)" if f.relation == "fk" else
                                  f"{last(f.field_type)} (db_index by default)"))
            if f.relation in ("fk", "o2o"):
                target = self.orm.model(f.target)
                ref_table = target.table if target is not None and target.table else \
                    self.orm.external_django_models.get(f.target_label or "", "")
                t.fks.append(ForeignKeyDef(t.name, (col,), (ref_table or "").lower(), f.path, f.line, "django",
                                           f.name, m.qualified))
        if pk_field is None and not t.pk:
            t.pk = ("id",)
            t.add_column(Column("id", "id", "number", m.path, m.line))
            t.add_index(Index(t.name, ("id",), unique=True, primary=True, path=m.path, line=m.line,
                              source="django-model", implicit=True, declared="implicit id"))
        self.django_meta(m, t)

    def proxy_tables(self) -> None:
        """`class Meta: proxy = True` models query their concrete parent's table."""
        for m in self.orm.models.values():
            if m.framework != DJANGO or m.meta_value("proxy") is not True:
                continue
            for anc in self.index.mro(m.qualified)[1:]:
                if anc in self.model_table:
                    self.model_table[m.qualified] = self.model_table[anc]
                    break

    def django_meta(self, m: OrmModel, t: Table) -> None:
        line_of = m.meta_lines
        for key, unique in (("unique_together", True), ("index_together", False)):
            v = m.meta.get(key)
            if v is None:
                continue
            groups = const_value(v)
            if isinstance(groups, list) and groups and all(isinstance(g, str) for g in groups):
                groups = [groups]
            for g in groups if isinstance(groups, list) else []:
                if isinstance(g, list) and all(isinstance(n, str) for n in g):
                    cols = [self.column_of(m, n) or n.lower() for n in g]
                    if cols:
                        t.add_index(Index(t.name, tuple(cols), unique=unique, path=m.path,
                                          line=line_of.get(key, m.line), source="django-model",
                                          declared=f"{key} {tuple(g)}"))
        for key in ("indexes", "constraints"):
            v = m.meta.get(key)
            if v is None or v[0] != "list":
                continue
            for item in v[1]:
                path, line = m.path, line_of.get(key, m.line)
                for anc in self.index.mro(m.qualified):
                    span = self.class_span(f"{anc}.Meta")
                    found = self.call_line(span[0], MODULE_SCOPE, item, span[1], span[2]) if span else None
                    if found:
                        path, line = span[0], found
                        break
                ix = self.django_index(m, t, item, line, path, "django-model")
                if ix is not None:
                    t.add_index(ix)

    def django_index(self, m: OrmModel | None, t: Table, item: Value, line: int, path: str,
                     source: str) -> Index | None:
        """`models.Index(...)`, `GinIndex(...)`, `UniqueConstraint(...)` descriptors -> Index."""
        if item[0] != "call":
            return None
        kind = last(item[1])
        args, kwargs = item[2], item[3]
        if kind in ("CheckConstraint", "ExclusionConstraint") or not (kind.endswith("Index") or kind == "UniqueConstraint"):
            return None
        keys: list[str] = []
        for name in str_list(kwargs.get("fields")):
            # a field we do not model (a third-party field class) keeps its name: the index still exists
            col = (self.column_of(m, name) if m is not None else None) or name.lstrip("-").lower()
            keys.append(col)
        opclasses = str_list(kwargs.get("opclasses"))
        trigram = any("trgm" in o for o in opclasses)
        for a in args:
            key, trgm = self.expression_key(m, a)
            keys.append(key)
            trigram = trigram or trgm
        if not keys:
            return None
        method = {"GinIndex": "gin", "GistIndex": "gist", "BrinIndex": "brin", "HashIndex": "hash",
                  "SpGistIndex": "spgist", "BloomIndex": "bloom"}.get(kind, "btree")
        cond = kwargs.get("condition")
        cond_cols = None
        cond_text = ""
        if cond is not None and cond[0] != "const":
            cols = set()
            for sub in iter_values(cond):
                if sub[0] == "call":
                    for k in sub[3]:
                        c = self.column_of(m, k) if m is not None else k.split("__")[0]
                        if c:
                            cols.add(c)
            cond_cols = frozenset(cols)
            cond_text = ", ".join(sorted(cols))
        name = const_value(kwargs.get("name"))
        if isinstance(name, str) and m is not None and "%(" in name:
            name = name.replace("%(class)s", m.name.lower()).replace("%(app_label)s", m.app_label or "")
        return Index(t.name, tuple(keys), unique=kind == "UniqueConstraint", condition_columns=cond_cols,
                     condition=cond_text, method=method, trigram=trigram,
                     name=name if isinstance(name, str) else None, path=path, line=line, source=source,
                     declared=f"{kind}({', '.join(keys)})")

    def expression_key(self, m: OrmModel | None, v: Value) -> tuple[str, bool]:
        """`Lower("email")` -> ("lower(email)", False); `OpClass(Upper("x"), name="gin_trgm_ops")`."""
        if v[0] == "const" and isinstance(v[1], str):
            col = self.column_of(m, v[1]) if m is not None else v[1].lower()
            return (col or "?"), False
        if v[0] != "call":
            return "?", False
        kind = last(v[1])
        if kind == "F" and v[2]:
            return self.expression_key(m, v[2][0])
        if kind == "OpClass" and v[2]:
            key, _ = self.expression_key(m, v[2][0])
            return key, "trgm" in str(const_value(v[3].get("name"), ""))
        if kind in ("Lower", "Upper") and v[2]:
            inner, _ = self.expression_key(m, v[2][0])
            return (f"{kind.lower()}({inner})" if inner != "?" else "?"), False
        return "?", False

    # ----- SQLAlchemy ------------------------------------------------------------------------
    def sa_table_name(self, m: OrmModel) -> str | None:
        if m.table:
            return m.table
        ancestors = self.index.ancestors(m.qualified)
        if any(a.startswith("flask_sqlalchemy") for a in ancestors):
            return re.sub(r"(?<!^)(?=[A-Z])", "_", m.name).lower()
        if any(a.startswith("sqlmodel") for a in ancestors):
            return m.name.lower()
        return None

    def sqlalchemy_model(self, m: OrmModel) -> None:
        name = self.sa_table_name(m)
        if not name:
            return
        t = self.schema.table(name)
        before = len(t.indexes) if t is not None else 0
        self._sqlalchemy_model(m, name)
        self._own(self.schema.tables[name.lower().strip('"`')], m.qualified, before)

    def _sqlalchemy_model(self, m: OrmModel, name: str) -> None:
        t = self.schema.ensure(name, model=m.qualified, framework=SQLALCHEMY, path=m.path, line=m.line)
        t.model = m.qualified
        self.model_table[m.qualified] = t.name
        pk: list[str] = []
        is_table_var = m.qualified not in self.index.classes
        for f in m.table_fields.values():
            if f.relation == "relationship":
                continue
            col = (f.column or f.name).lower()
            if is_table_var:
                f.line = self.column_line(m.path, MODULE_SCOPE, f.name, m.line, m.line + 500) or f.line
            t.add_column(Column(col, f.name, self.sa_type(f), f.path, f.line))
            if f.kw("primary_key"):
                pk.append(col)
            if f.kw("unique"):
                t.add_index(Index(t.name, (col,), unique=True, path=f.path, line=f.line, source="sqlalchemy",
                                  declared="unique=True", name=f"uq_{t.name}_{col}"))
            # unique=True, index=True is ONE unique index; primary_key=True, index=True (the FastAPI tutorial's
            # boilerplate) does add a second index, but it is harmless enough that we do not report it
            if f.kw("index") and not f.kw("unique") and not f.kw("primary_key"):
                t.add_index(Index(t.name, (col,), unique=False, path=f.path, line=f.line,
                                  source="sqlalchemy", declared="index=True", name=f"ix_{t.name}_{col}"))
            if f.relation == "fk" and f.target_label:
                ref_table = self.sa_ref_table(f.target_label)
                t.fks.append(ForeignKeyDef(t.name, (col,), ref_table, f.path, f.line, "sqlalchemy", f.name, m.qualified))
        if pk:
            t.pk = tuple(pk)
            t.add_index(Index(t.name, tuple(pk), unique=True, primary=True, path=m.path, line=m.line,
                              source="sqlalchemy", implicit=True, declared="primary key"))
        items: list[Value] = []
        ta = m.meta.get("__table_args__")
        if ta is not None and ta[0] == "list":
            items.extend(ta[1])
        ti = m.meta.get("table_items")
        if ti is not None and ti[0] == "list":
            items.extend(ti[1])
        line = m.meta_lines.get("__table_args__", m.line)
        span = self.class_span(m.qualified)
        for item in items:
            found = None
            if span is not None:
                found = self.call_line(span[0], MODULE_SCOPE, item, span[1], span[2])
            elif m.qualified not in self.index.classes:  # a Table(...) variable
                found = self.call_line(m.path, MODULE_SCOPE, item, m.line, m.line + 500)
            self.sa_table_item(m, t, item, found or line)

    def sa_type(self, f: ModelField) -> str:
        if f.relation == "fk":
            return "fk"
        for a in f.args:
            if a[0] in ("ref", "call"):
                name = last(a[1])
                for kind, names in self.data.get("sqlalchemy_types", {}).items():
                    if name in names:
                        return kind
        return "other"

    def sa_ref_table(self, label: str) -> str:
        if "." in label and not label.count(".") > 1:
            return label.split(".")[0].lower()
        model = self.orm.model_of_ref(label)
        if model is not None:
            return (self.sa_table_name(model) or "").lower()
        return label.rsplit(".", 1)[0].lower()

    def sa_col_name(self, m: OrmModel | None, v: Value) -> str | None:
        if v[0] == "const" and isinstance(v[1], str):
            return v[1].lower()
        if v[0] == "ref" and v[1]:
            name = v[1].rsplit(".", 1)[-1].lstrip("$@")
            if m is not None and name in m.table_fields:
                return (m.table_fields[name].column or name).lower()
            return name.lower()
        if v[0] == "call" and v[2]:
            fn = last(v[1]).lower()
            if fn == "text":
                s = const_value(v[2][0])
                mt = _EXPR.match(s) if isinstance(s, str) else None
                return f"{mt.group(1).lower()}({mt.group(2).lower()})" if mt else None
            if fn in ("lower", "upper"):
                inner = self.sa_col_name(m, v[2][0])
                return f"{fn}({inner})" if inner else None
            if ".func." in f".{v[1]}" or fn in ("extract", "cast"):
                # `func.date(Post.created_at)`, `extract("year", Post.published_at)`: an expression key
                cols = [self.sa_col_name(m, a) for a in v[2] if a[0] == "ref"]
                if len(cols) == 1 and cols[0]:
                    return f"{fn}({cols[0]})"
                return None
            if fn in ("desc", "asc"):
                return self.sa_col_name(m, v[2][0])
        return None

    def sa_table_item(self, m: OrmModel | None, t: Table, item: Value, line: int, path: str | None = None,
                      source: str = "sqlalchemy") -> None:
        if item[0] != "call":
            return
        kind = last(item[1])
        args, kwargs = item[2], item[3]
        path = path or (m.path if m else t.path)
        if kind == "Index":
            name = const_value(args[0]) if args else None
            keys = [self.sa_col_name(m, a) for a in args[1:]]
            if not keys or any(k is None for k in keys):
                return
            where = kwargs.get("postgresql_where") or kwargs.get("sqlite_where")
            ops = kwargs.get("postgresql_ops")
            trigram = ops is not None and "trgm" in repr(ops)
            using = const_value(kwargs.get("postgresql_using")) or "btree"
            cond_cols = None
            if where is not None:
                cond_cols = frozenset(c for c in (self.sa_col_name(m, w) for w in iter_values(where)
                                                  if w[0] == "ref") if c)
            t.add_index(Index(t.name, tuple(keys), unique=bool(const_value(kwargs.get("unique"))),
                              condition_columns=cond_cols, condition=", ".join(sorted(cond_cols or ())),
                              method=str(using).lower(), trigram=trigram,
                              name=name if isinstance(name, str) else None, path=path, line=line, source=source,
                              declared=f"Index({', '.join(keys)})"))
        elif kind in ("UniqueConstraint", "PrimaryKeyConstraint"):
            keys = [self.sa_col_name(m, a) for a in args]
            if keys and all(keys):
                if kind == "PrimaryKeyConstraint":
                    t.pk = tuple(keys)
                name = const_value(kwargs.get("name"))
                t.add_index(Index(t.name, tuple(keys), unique=True, primary=kind == "PrimaryKeyConstraint",
                                  path=path, line=line, source=source, name=name if isinstance(name, str) else None,
                                  implicit=kind == "PrimaryKeyConstraint", declared=f"{kind}({', '.join(keys)})"))
        elif kind == "ForeignKeyConstraint" and len(args) >= 2:
            cols = [c.lower() for c in str_list(args[0])]
            refs = str_list(args[1])
            if cols and refs:
                t.fks.append(ForeignKeyDef(t.name, tuple(cols), refs[0].split(".")[0].lower(), path, line, source))

    def sqlalchemy_module_indexes(self) -> None:
        """`Index("ix", User.email)` written at module level, after the class."""
        wanted = set(self.data.get("sqlalchemy_index_calls", []))
        for path, summary in self.index.summaries.items():
            fn = summary.functions.get(MODULE_SCOPE)
            if fn is None or not any(c.ref and c.ref.endswith("Index") for c in fn.calls):
                continue
            module = self.index.module_of[path]
            for call in fn.calls:
                if not call.ref or not call.ref.endswith("Index"):
                    continue
                if self.index.resolve(module, call.ref) not in wanted or len(call.args) < 2:
                    continue
                # the first column named in the keys, also inside an expression (`func.lower(users.c.email)`)
                first_col = next((v for a in call.args[1:] for v in iter_values(a)
                                  if v[0] == "ref" and v[1] and "." in v[1] and ".func." not in f".{v[1]}"),
                                 call.args[1])
                owner = None
                if first_col[0] == "ref" and first_col[1] and "." in first_col[1]:
                    # resolve the owner only: resolving `User.email` itself follows the attribute's value
                    head = first_col[1].rsplit(".", 1)[0]
                    if head.endswith((".c", ".columns")):
                        head = head.rsplit(".", 1)[0]
                    owner = self.orm.model(self.index.resolve(module, head)) or self.table_var(module, head)
                if owner is None or self.model_table.get(owner.qualified) is None:
                    continue
                t = self.schema.tables[self.model_table[owner.qualified]]
                self.sa_table_item(owner, t, ("call", call.ref, call.args, call.kwargs), call.line, path)

    def table_var(self, module: str, ref: str) -> OrmModel | None:
        """A module-level `Table(...)` variable named by `ref` (resolving the ref would follow its value)."""
        if ref.startswith("@") or "." not in ref.strip("."):
            m = self.orm.models.get(f"{module}.{ref.lstrip('@$')}")
        else:
            head, _, name = ref.rpartition(".")
            base = self.index.resolve(module, head)
            m = self.orm.models.get(f"{base}.{name}") if base else None
        return m if m is not None and m.qualified not in self.index.classes else None

    # ----- SQL DDL facts ---------------------------------------------------------------------
    def apply_sql(self, fact: dict[str, Any], path: str, source: str = "sql") -> None:
        kind = fact.get("kind")
        if kind in ("create_table", "alter_table"):
            t = self.schema.ensure(fact["table"], framework="sql", path=path, line=fact["line"])
            if not t.path:
                t.path, t.line = path, fact["line"]
            for c in fact["columns"]:
                t.add_column(Column(c["name"], None, _sql_type(c.get("type", "")), path, c["line"]))
            if fact["pk"]:
                t.pk = tuple(fact["pk"])
                t.add_index(Index(t.name, tuple(fact["pk"]), unique=True, primary=True, path=path,
                                  line=fact["line"], source=source, implicit=True, declared="PRIMARY KEY"))
            for u in fact["uniques"]:
                t.add_index(Index(t.name, tuple(u), unique=True, path=path, line=fact["line"], source=source,
                                  implicit=True, declared=f"UNIQUE ({', '.join(u)})"))
            for fk in fact["fks"]:
                cols = tuple(fk["columns"])
                if not any(f.columns == cols for f in t.fks):
                    t.fks.append(ForeignKeyDef(t.name, cols, fk["ref_table"], path, fk["line"], source))
            for ix in fact["indexes"]:
                self.apply_sql(ix, path, source)
        elif kind == "create_index":
            t = self.schema.table(fact["table"])
            if t is None:
                t = self.schema.ensure(fact["table"], framework="sql", path=path, line=fact["line"])
            t.add_index(Index(t.name, tuple(fact["keys"]), unique=fact["unique"],
                              condition_columns=frozenset(fact["where_cols"]) if fact["where_cols"] is not None else None,
                              condition=fact.get("where", ""), method=fact["method"] or "btree",
                              trigram=fact["trigram"], name=fact["name"] or None, path=path, line=fact["line"],
                              source=source, declared=f"CREATE INDEX ({', '.join(fact['keys'])})"))
        elif kind == "drop_index":
            self.schema.drop_index(fact["name"])

    # ----- migrations ------------------------------------------------------------------------
    def migration_order(self) -> list[str]:
        django = sorted(p for p, s in self.index.summaries.items() if self.django_migration(s))
        alembic = [p for p, s in self.index.summaries.items() if self.alembic_migration(s) and not self.django_migration(s)]
        rev_of: dict[str, str] = {}
        down_of: dict[str, Any] = {}
        for p in alembic:
            s = self.index.summaries[p]
            r = const_value(s.assigns["revision"].value) if "revision" in s.assigns else None
            d = const_value(s.assigns["down_revision"].value) if "down_revision" in s.assigns else None
            if isinstance(r, str):
                rev_of[p] = r
                down_of[r] = d
        depth: dict[str, int] = {}

        def level(rev: Any, seen: int = 0) -> int:
            if not isinstance(rev, str) or rev not in down_of or seen > 500:
                return 0
            if rev not in depth:
                d = down_of[rev]
                parents = d if isinstance(d, list) else [d]
                depth[rev] = 1 + max((level(x, seen + 1) for x in parents), default=0)
            return depth[rev]

        alembic.sort(key=lambda p: (level(rev_of.get(p)), p))
        return django + alembic

    def apply_migration(self, path: str) -> None:
        s = self.index.summaries[path]
        module = self.index.module_of[path]
        events: list[tuple[int, int, Any]] = []
        facts = self.facts.get(path)
        if isinstance(facts, dict):
            for fact in facts.get("sql", []):
                if fact.get("kind") != "query" and not fact.get("reverse"):
                    events.append((fact.get("string_line", fact["line"]), 1, ("sql", fact)))
        if self.django_migration(s):
            app = self.migration_app(module)
            for call in s.functions[MODULE_SCOPE].calls:
                target = self.index.resolve(module, call.ref) if call.ref else None
                if target and (target.startswith("django.db.migrations.") or
                               target.startswith("django.contrib.postgres.operations.")):
                    events.append((call.line, 0, ("django", app, last(target), call)))
        else:
            fn = s.functions.get("upgrade")
            for call in fn.calls if fn else []:
                target = self.index.resolve(module, call.ref) if call.ref else None
                if target and target.startswith("alembic.op."):
                    events.append((call.line, 0, ("alembic", last(target), call)))
        events.sort(key=lambda e: (e[0], e[1]))
        for _line, _order, ev in events:
            try:
                if ev[0] == "sql":
                    self.apply_sql(ev[1], path, "django-migration" if self.django_migration(s) else "alembic")
                elif ev[0] == "django":
                    self.django_operation(path, ev[1], ev[2], ev[3])
                else:
                    self.alembic_operation(path, ev[1], ev[2])
            except Exception:  # an odd operation never stops the scan
                continue

    @staticmethod
    def migration_app(module: str) -> str:
        parts = module.split(".")
        return parts[-3] if len(parts) >= 3 and parts[-2] == "migrations" else (parts[0] if parts else "")

    def migration_model(self, app: str, model_name: str) -> OrmModel | None:
        if self._by_lower_name is None:
            self._by_lower_name = {}
            for m in self.orm.models.values():
                if m.framework == DJANGO and not m.abstract:
                    self._by_lower_name.setdefault(m.name.lower(), []).append(m)
        cands = self._by_lower_name.get(model_name.lower(), [])
        for m in cands:
            if m.app_label == app:
                return m
        return cands[0] if len(cands) == 1 else None

    def django_operation(self, path: str, app: str, op: str, call: Any) -> None:
        kw = call.kwargs
        model_name = const_value(kw.get("model_name") or kw.get("name") or (call.args[0] if call.args else None))
        if not isinstance(model_name, str):
            return
        m = self.migration_model(app, model_name)
        table = self.schema.table(m.table) if m is not None and m.table else None
        if op == "CreateModel" and m is None:
            options = kw.get("options")
            db_table = None
            if options is not None and options[0] == "dict":
                for k, v in options[1]:
                    if const_value(k) == "db_table":
                        db_table = const_value(v)
            name = db_table if isinstance(db_table, str) else f"{app}_{model_name.lower()}"
            t = self.schema.ensure(name, framework="django-migration", path=path, line=call.line)
            fields = kw.get("fields") or (call.args[1] if len(call.args) > 1 else None)
            for item in (fields[1] if fields and fields[0] == "list" else []):
                if item[0] == "list" and len(item[1]) == 2 and item[1][1][0] == "call":
                    self.migration_field(t, const_value(item[1][0]), item[1][1], path, call.line)
            return
        if table is None and m is None and op in ("AddField", "AlterField"):
            # a table that only migrations describe (its model is gone from the repo or never existed)
            table = self.schema.table(f"{app}_{model_name.lower()}")
            field = kw.get("field") or (call.args[2] if len(call.args) > 2 else None)
            name = const_value(kw.get("name") or (call.args[1] if len(call.args) > 1 else None))
            if table is not None and field is not None and field[0] == "call":
                self.migration_field(table, name, field, path, call.line)
            return
        if table is None:
            return
        if op in ("AddIndex", "AddIndexConcurrently", "AddConstraint", "AddConstraintNotValid"):
            item = kw.get("index") or kw.get("constraint") or (call.args[1] if len(call.args) > 1 else None)
            if item is not None:
                ix = self.django_index(m, table, item, call.line, path, "django-migration")
                if ix is not None:
                    table.add_index(ix)
        elif op in ("RemoveIndex", "RemoveIndexConcurrently", "RemoveConstraint"):
            name = const_value(kw.get("name") or (call.args[1] if len(call.args) > 1 else None))
            if isinstance(name, str):
                table.indexes = [ix for ix in table.indexes if not (
                    ix.name and ix.name.lower() == name.lower() and ix.source != "django-model")]

    def migration_field(self, t: Table, name: Any, fv: Value, path: str, line: int) -> None:
        if not isinstance(name, str):
            return
        kind = last(fv[1])
        kwargs = fv[3]
        if kind == "ManyToManyField":
            return
        col = f"{name}_id" if kind in ("ForeignKey", "OneToOneField") else name
        col = str(const_value(kwargs.get("db_column")) or col).lower()
        t.add_column(Column(col, name, "fk" if kind.endswith(("ForeignKey", "OneToOneField")) else "other", path, line))
        if const_value(kwargs.get("primary_key")):
            t.pk = (col,)
            t.add_index(Index(t.name, (col,), unique=True, primary=True, path=path, line=line,
                              source="django-migration", implicit=True))
        elif const_value(kwargs.get("unique")) or kind == "OneToOneField":
            t.add_index(Index(t.name, (col,), unique=True, path=path, line=line, source="django-migration", implicit=True))
        elif const_value(kwargs.get("db_index")) or (kind == "ForeignKey" and const_value(kwargs.get("db_index")) is None):
            t.add_index(Index(t.name, (col,), path=path, line=line, source="django-migration", implicit=True))

    def alembic_operation(self, path: str, op: str, call: Any) -> None:
        args, kw = call.args, call.kwargs

        def arg(i: int, name: str) -> Value | None:
            return kw.get(name) if name in kw else (args[i] if len(args) > i else None)

        def name_of(v: Value | None) -> str | None:
            if v is None:
                return None
            if v[0] == "call" and last(v[1]) == "f" and v[2]:
                v = v[2][0]
            val = const_value(v)
            return val.lower() if isinstance(val, str) else None

        if op == "create_table":
            tname = name_of(arg(0, "table_name"))
            if not tname:
                return
            t = self.schema.ensure(tname, framework="alembic", path=path, line=call.line)
            pk: list[str] = []
            for item in args[1:]:
                if item[0] != "call":
                    continue
                if last(item[1]) == "Column":
                    name = const_value(item[2][0]) if item[2] else None
                    cline = self.column_line(path, "upgrade", name, call.line, call.end_line) if isinstance(name, str) else None
                    col = self.alembic_column(t, item, path, cline or call.line)
                    if col and const_value(item[3].get("primary_key")):
                        pk.append(col)
                else:
                    iline = self.call_line(path, "upgrade", item, call.line, call.end_line)
                    self.sa_table_item(None, t, item, iline or call.line, path, "alembic")
            if pk and not t.pk:
                t.pk = tuple(pk)
                t.add_index(Index(t.name, tuple(pk), unique=True, primary=True, path=path, line=call.line,
                                  source="alembic", implicit=True))
        elif op == "add_column":
            t = self.schema.table(name_of(arg(0, "table_name")) or "")
            col = arg(1, "column")
            if t is not None and col is not None and col[0] == "call":
                self.alembic_column(t, col, path, call.line)
        elif op == "create_index":
            iname, tname, cols = name_of(arg(0, "index_name")), name_of(arg(1, "table_name")), arg(2, "columns")
            t = self.schema.table(tname or "")
            if t is None or cols is None:
                return
            items = cols[1] if cols[0] == "list" else [cols]
            keys = [self.sa_col_name(None, c) for c in items]
            if not keys or any(k is None for k in keys):
                return
            where = kw.get("postgresql_where") or kw.get("sqlite_where")
            cond_cols = None
            if where is not None:
                text = repr(where)
                cond_cols = frozenset(c.lower() for c in re.findall(r"\b([a-z_][a-z0-9_]*)\b", text)
                                      if c.lower() in t.columns)
            t.add_index(Index(t.name, tuple(keys), unique=bool(const_value(kw.get("unique"))),
                              condition_columns=cond_cols, condition=", ".join(sorted(cond_cols or ())),
                              method=str(const_value(kw.get("postgresql_using")) or "btree").lower(),
                              trigram="trgm" in repr(kw.get("postgresql_ops")), name=iname, path=path,
                              line=call.line, source="alembic", declared=f"op.create_index({', '.join(keys)})"))
        elif op in ("create_unique_constraint", "create_primary_key"):
            iname, tname, cols = name_of(arg(0, "constraint_name")), name_of(arg(1, "table_name")), arg(2, "columns")
            t = self.schema.table(tname or "")
            keys = [c.lower() for c in str_list(cols)]
            if t is not None and keys:
                t.add_index(Index(t.name, tuple(keys), unique=True, primary=op == "create_primary_key", name=iname,
                                  path=path, line=call.line, source="alembic"))
        elif op == "create_foreign_key":
            src, ref = name_of(arg(1, "source_table")), name_of(arg(2, "referent_table"))
            cols = [c.lower() for c in str_list(arg(3, "local_cols"))]
            t = self.schema.table(src or "")
            if t is not None and cols and ref:
                if not any(f.columns == tuple(cols) for f in t.fks):
                    t.fks.append(ForeignKeyDef(t.name, tuple(cols), ref, path, call.line, "alembic"))
        elif op in ("drop_index", "drop_constraint"):
            name = name_of(arg(0, "index_name" if op == "drop_index" else "constraint_name"))
            if name:
                self.schema.drop_index(name)

    def alembic_column(self, t: Table, item: Value, path: str, line: int) -> str | None:
        args, kw = item[2], item[3]
        name = const_value(args[0]) if args else const_value(kw.get("name"))
        if not isinstance(name, str):
            return None
        col = name.lower()
        ctype = "other"
        fk_target = None
        for a in args[1:]:
            if a[0] in ("ref", "call"):
                n = last(a[1])
                if n == "ForeignKey" and a[0] == "call" and a[2]:
                    tgt = const_value(a[2][0])
                    fk_target = tgt.split(".")[0].lower() if isinstance(tgt, str) else None
                    ctype = "fk"
                else:
                    for kind, names in self.data.get("sqlalchemy_types", {}).items():
                        if n in names and ctype == "other":
                            ctype = kind
        t.add_column(Column(col, None, ctype, path, line))
        if fk_target and not any(f.columns == (col,) for f in t.fks):
            t.fks.append(ForeignKeyDef(t.name, (col,), fk_target, path, line, "alembic"))
        if const_value(kw.get("unique")):
            t.add_index(Index(t.name, (col,), unique=True, path=path, line=line, source="alembic"))
        elif const_value(kw.get("index")) and not const_value(kw.get("primary_key")):
            t.add_index(Index(t.name, (col,), path=path, line=line, source="alembic", name=f"ix_{t.name}_{col}"))
        return col

    # ----- catalog ---------------------------------------------------------------------------
    def add_catalog_tables(self) -> None:
        for name, spec in self.data.get("third_party_tables", {}).items():
            if self.schema.table(name) is not None:
                continue
            t = self.schema.ensure(name, framework="catalog", external=True)
            t.pk = tuple(spec.get("pk", ["id"]))
            t.add_index(Index(t.name, t.pk, unique=True, primary=True, source="catalog", implicit=True))
            for cols in spec.get("unique", []):
                t.add_index(Index(t.name, tuple(cols), unique=True, source="catalog", implicit=True))
            for cols in spec.get("indexes", []):
                t.add_index(Index(t.name, tuple(cols), source="catalog", implicit=True))


def _guarded(fn: Any, *args: Any) -> None:
    """One odd model or migration must not cost the whole schema."""
    try:
        fn(*args)
    except Exception:
        import os

        if os.environ.get("BACKEND_AUDIT_DEBUG"):
            raise


def _sql_type(t: str) -> str:
    t = t.lower()
    if t.startswith(("varchar", "char", "text", "citext", "character", "nvarchar", "string")):
        return "citext" if t.startswith("citext") else "text"
    if t.startswith(("bool",)):
        return "bool"
    if t.startswith(("json", "jsonb")) or t.endswith("[]") or t.startswith("array"):
        return "json"
    if t.startswith(("timestamp", "date", "time")):
        return "datetime"
    if t.startswith(("int", "bigint", "smallint", "serial", "bigserial", "numeric", "decimal", "float", "double", "real")):
        return "number"
    return "other"
