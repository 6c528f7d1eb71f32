"""The query workload: every place the code filters, joins or orders on a column, and how.

Three sources, one shape (`Query` with `Usage`s on schema tables):

* Django querysets: call sites of `Model.<manager>.<method>()` chains resolved through the
  project index (so `Book.objects.filter(...)` in views.py is `shop.models.Book`), querysets kept
  in variables (`qs = Book.objects.filter(...); qs.order_by(...)`), `get_object_or_404(Model, ...)`;
  lookups resolved through the ORM graph across forward and reverse relations
  (`author__email__iexact`, `books__title`), `order_by`, `latest/earliest`, `distinct(fields)`,
  and `Meta.ordering` for querysets that keep the default order.
* SQLAlchemy chains (`select(User).where(User.email == x)`, `session.query(User).filter_by(...)`,
  `.order_by(User.created_at.desc())`), from the facts `collect()` extracted.
* Raw SQL parsed by sqlglot (strings in code and `.sql` files), aliases already resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend_audit.analyzers.missing_index.builders import SchemaBuilder, last, str_list
from backend_audit.analyzers.missing_index.schema import Schema
from backend_audit.index.orm import DJANGO, OrmIndex, OrmModel
from backend_audit.index.project import ProjectIndex, split_ref, strip_markers
from backend_audit.parsing.summary import CallSite, const_value, iter_values


@dataclass
class Usage:
    table: str
    column: str
    usage: str  # eq range prefix infix iexact func:lower join order group isnull neg ilike
    line: int
    col: int = 0
    end_line: int = 0
    end_col: int = 0
    field: str | None = None
    model: str | None = None
    lookup: str = ""
    in_or: int = 0  # the OR group (0: not in an OR): the query needs an index in every group


@dataclass
class Query:
    kind: str  # django, sqlalchemy, sql
    path: str
    line: int
    col: int
    end_line: int
    end_col: int
    symbol: str = ""
    usages: list[Usage] = field(default_factory=list)
    model: str | None = None
    table: str | None = None
    #: BA204: the columns a get_or_create / exists-then-create makes unique in code
    unique_in_code: tuple[str, set[str], int, int, int, int] | None = None
    explicit_order: bool = False
    uses_default_order: bool = False
    #: a filter we could not resolve (an external model, `**kwargs`, a custom lookup): never "unfiltered"
    opaque_filter: bool = False


class Workload:
    def __init__(self, index: ProjectIndex, orm: OrmIndex, schema: Schema, builder: SchemaBuilder,
                 data: dict[str, Any], facts: dict[str, Any], dialect: str):
        self.index = index
        self.orm = orm
        self.schema = schema
        self.builder = builder
        self.data = data
        self.facts = facts
        self.dialect = dialect
        self.queries: list[Query] = []
        self.methods = set(data.get("django_queryset_methods", []))
        self.lookups: dict[str, str] = dict(data.get("django_lookups", {}))
        self.managers_default = set(data.get("django_default_managers", ["objects"]))
        self._user_model: tuple[str] | None = None
        self._joins: list[tuple[str, str, str, str]] = []
        self._or_groups = 0
        self._qs_models: dict[str, set[str]] | None = None

    def build(self) -> list[Query]:
        self.django()
        self.sqlalchemy()
        self.raw_sql()
        return self.queries

    # ----- Django -------------------------------------------------------------------------------
    def model_and_chain(self, target: str) -> tuple[OrmModel, list[str]] | None:
        """`shop.models.Book.objects.filter().order_by` -> (Book, ["filter()", "order_by"])."""
        segs = split_ref(target)
        for i in range(len(segs) - 1, 0, -1):
            head = ".".join(segs[:i])
            m = self.orm.models.get(head)
            if m is None:
                continue
            if m.framework != DJANGO or i >= len(segs):
                return None
            manager, markers = strip_markers(segs[i])
            if markers or manager in m.fields:
                return None
            return m, segs[i + 1:]
        return None

    def manager_instance_target(self, target: str) -> str | None:
        """`app.models.EmployeeManager().get` -> `app.models.Employee.objects.get`.

        With `objects = EmployeeManager()` on the model, the index resolves `Employee.objects.get`
        through the attribute's value to the manager instance. A manager class that belongs to
        exactly one model, and whose `get_queryset()` adds no filter we would miss, names it.
        """
        head, sep, rest = target.partition("().")
        if not sep or head not in self.index.classes:
            return None
        models = self.queryset_models().get(head)
        if not models or len(models) != 1 or self.filtering_get_queryset(head):
            return None
        m = self.orm.models.get(next(iter(models)))
        if m is None or m.framework != DJANGO:
            return None
        attr = next((a for a, ref in m.managers.items() if ref == head), None)
        return f"{m.qualified}.{attr}.{rest}" if attr else None

    def django(self) -> None:
        for info in self.index.iter_functions():
            calls = info.summary.calls
            if not calls or is_test_path(info.path):
                continue
            sites: list[tuple[CallSite, str, OrmModel, str]] = []
            for site in calls:
                ref = site.ref
                if not ref:
                    continue
                method = ref.rsplit(".", 1)[-1]
                if method in ("get_object_or_404", "get_list_or_404"):
                    self.shortcut(info, site)
                    continue
                if method not in self.methods:
                    continue
                target = self.index.resolve(info.module, ref)
                if not target:
                    continue
                found = self.model_and_chain(target)
                if found is None:
                    via_manager = self.manager_instance_target(target)
                    if via_manager:
                        target, found = via_manager, self.model_and_chain(via_manager)
                if found is None:
                    # `self.filter(...)` inside a custom QuerySet / Manager method: a query on its model
                    try:
                        target = self.queryset_target(target, info) or ""
                    except Exception:  # an odd manager declaration never stops the analysis
                        target = ""
                    found = self.model_and_chain(target) if target else None
                if found is None or found[0].abstract:
                    continue
                if any(strip_markers(seg)[0] not in self.methods for seg in found[1][:-1]):
                    continue  # a custom queryset method in the chain may filter on anything
                sites.append((site, target, found[0], method))
            if sites:
                try:
                    self.django_queries(info, sites)
                except Exception:
                    import os

                    if os.environ.get("BACKEND_AUDIT_DEBUG"):
                        raise

    def queryset_target(self, target: str, info: Any = None) -> str | None:
        """`app.models.EmployeeQuerySet().filter` -> `app.models.Employee.objects.filter` when the QuerySet /
        Manager class belongs to exactly one model (`objects = EmployeeQuerySet.as_manager()`,
        `objects = EmployeeManager()` whose `get_queryset` builds it, `Manager.from_queryset(QS)()`)."""
        if target.startswith("builtins.super().") and info is not None and getattr(info.summary, "class_qualname", None):
            # `super().get_queryset().filter(...)` in a Manager method: the manager's own queryset
            rest = target[len("builtins.super()."):]
            if rest.startswith(("get_queryset().", "all().")):
                rest = rest.split("().", 1)[1]
            head, sep = f"{info.module}.{info.summary.class_qualname}", "()."
        else:
            head, sep, rest = target.partition("().")
        if not sep:
            return None
        qs_models = self.queryset_models()
        models = qs_models.get(head)
        cls = getattr(info.summary, "class_qualname", None) if info is not None else None
        if not models or len(models) != 1 or not cls:
            return None
        # only the methods of the QuerySet / Manager classes themselves: a call elsewhere through a custom
        # manager (`Revision.page_revisions.order_by(...)`) runs its get_queryset() filters, which we do not see
        owner = f"{info.module}.{cls}"
        if qs_models.get(owner) != models:
            return None
        if not target.startswith("builtins.super().") and info.summary.name != "get_queryset" \
                and self.filtering_get_queryset(owner):
            return None  # `self.filter(...)` on a manager whose get_queryset() already filters: not all we see
        return f"{next(iter(models))}.__qs__.{rest}"

    def filtering_get_queryset(self, cls: str) -> bool:
        for anc in self.index.mro(cls):
            fn = self.index.functions.get(f"{anc}.get_queryset")
            if fn is not None:
                return any((c.ref or "").rsplit(".", 1)[-1] in ("filter", "exclude", "extra", "raw")
                           for c in fn.summary.calls)
        return False

    def queryset_models(self) -> dict[str, set[str]]:
        if self._qs_models is not None:
            return self._qs_models
        out: dict[str, set[str]] = {}
        self._qs_models = out
        for m in self.orm.models.values():
            if m.framework != DJANGO or m.abstract:
                continue
            managers = dict(m.managers)
            cls_info = self.index.classes.get(m.qualified)
            for attr, a in (cls_info.summary.attrs.items() if cls_info is not None else ()):
                # `objects = EmployeeManager.from_queryset(EmployeeQuerySet)()` (not a manager base the ORM knows)
                if attr not in managers and a.value[0] == "call" and ".from_queryset" in str(a.value[1] or ""):
                    managers[attr] = self.index.resolve(m.module, a.value[1]) or ""
            for attr, ref in managers.items():
                for cls in self.manager_classes(m, attr, ref or ""):
                    out.setdefault(cls, set()).add(m.qualified)
        return out

    def manager_classes(self, m: OrmModel, attr: str, ref: str) -> list[str]:
        found: list[str] = []
        if ref.endswith(".as_manager") and ref[:-11] in self.index.classes:
            found.append(ref[:-11])
        elif ref in self.index.classes:
            found.append(ref)
            getqs = self.index.functions.get(f"{ref}.get_queryset")
            if getqs is not None:
                for site in getqs.summary.calls:
                    r = self.index.resolve(getqs.module, site.ref) if site.ref else None
                    if r in self.index.classes and r != ref:
                        found.append(r)
        elif "from_queryset" in ref:
            base = ref.split(".from_queryset", 1)[0]
            if base in self.index.classes:
                found.append(base)
            cls_attr = self.index.classes.get(m.qualified)
            a = cls_attr.summary.attrs.get(attr) if cls_attr is not None else None
            fn = self.index.function_at(m.path, "<module>")
            if a is not None and fn is not None:
                for site in fn.summary.calls:
                    if site.line == a.line and (site.ref or "").endswith("from_queryset") and site.args:
                        r = self.index.resolve_value(fn.module, site.args[0])
                        if r in self.index.classes:
                            found.append(r)
        return found

    def shortcut(self, info: Any, site: CallSite) -> None:
        target = self.index.resolve(info.module, site.ref)
        if target not in ("django.shortcuts.get_object_or_404", "django.shortcuts.get_list_or_404") or not site.args:
            return
        ref = self.index.resolve_value(info.module, site.args[0])
        m = self.orm.model_of_ref(ref)
        if m is None or m.framework != DJANGO or m.abstract:
            return
        q = self.new_query("django", info, site, m)
        self.add_lookups(q, m, site, site.kwargs, "get")
        self.finish_django(q, m, ["get"])

    def new_query(self, kind: str, info: Any, site: CallSite, m: OrmModel | None) -> Query:
        return Query(kind, info.path, site.line, site.col, site.end_line, site.end_col,
                     symbol=info.summary.qualname if info.summary.qualname != "<module>" else "",
                     model=m.qualified if m else None,
                     table=(self.builder.model_table.get(m.qualified) if m else None))

    def method_line(self, path: str, site: CallSite, method: str) -> int:
        facts = self.facts.get(path)
        if isinstance(facts, dict):
            ml = facts.get("method_lines")
            if ml:
                return ml.get(f"{site.line}:{site.col}:{method}", site.line)
        return site.line

    def django_queries(self, info: Any, sites: list[tuple[CallSite, str, OrmModel, str]]) -> None:
        n = len(sites)
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        order = sorted(range(n), key=lambda i: (sites[i][0].line, sites[i][0].col))
        for pos, i in enumerate(order):
            site, target, _m, _method = sites[i]
            receiver = target.rsplit(".", 1)[0]
            if not receiver.endswith("()"):
                continue
            best = None
            for j in order[:pos] + order[pos + 1:]:
                s2, t2, _, _ = sites[j]
                if t2 + "()" != receiver:
                    continue
                if (s2.line, s2.col) == (site.line, site.col):
                    best = j
                    break
                if (s2.line, s2.col) < (site.line, site.col):
                    best = j  # the latest earlier one wins (order is sorted)
            if best is not None:
                parent[find(i)] = find(best)
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(find(i), []).append(i)
        for members in groups.values():
            first = sites[members[0]]
            m = first[2]
            q = self.new_query("django", info, first[0], m)
            if first[1].rsplit(".", 1)[0].endswith("()"):
                # continues a queryset built elsewhere (a helper's return value): its other filters are unseen
                q.opaque_filter = True
            methods: list[str] = []
            for i in members:
                site, _t, _m2, method = sites[i]
                methods.append(method)
                self.django_site(q, m, site, method)
            if "annotate" in methods and ("values" in methods or "values_list" in methods):
                # GROUP BY the values: the sort runs over the groups, not over the table
                q.usages = [u for u in q.usages if u.usage != "order"]
                q.explicit_order = True
            self.finish_django(q, m, methods)
            self.exists_then_create(q, m, info, members, sites)

    def django_site(self, q: Query, m: OrmModel, site: CallSite, method: str) -> None:
        if method in _ASYNC:
            method = method[1:]  # aget -> get: the same SQL
        if method in ("filter", "get", "exclude", "get_or_create", "update_or_create", "first_or_create"):
            kwargs = {k: v for k, v in site.kwargs.items() if k not in ("defaults", "create_defaults")}
            self.add_lookups(q, m, site, kwargs, method)
            for a in site.args:
                operands = _or_operands(a)
                for operand in operands:
                    group = 0
                    if len(operands) > 1:
                        self._or_groups += 1
                        group = self._or_groups
                    qs = [v for v in iter_values(operand) if v[0] == "call" and last(v[1]) == "Q"]
                    if method != "exclude" and (not qs or any(v[0] == "?" for v in iter_values(operand))):
                        q.opaque_filter = True  # `~Q(...)`, a conditional, a variable: we cannot see it all
                    for v in qs:
                        self.add_lookups(q, m, site, v[3], method, group)
            if method in ("get_or_create", "update_or_create") and not site.star_kwargs and kwargs and not site.args:
                cols = set()
                for k in kwargs:
                    if "__" in k and not k.endswith("__exact"):
                        cols = set()
                        break
                    c = self.builder.column_of(m, k.replace("__exact", ""))
                    if c is None:
                        cols = set()
                        break
                    cols.add(c)
                if cols:
                    line = self.method_line(q.path, site, method)
                    q.unique_in_code = (method, cols, line, site.col, site.end_line, site.end_col)
        elif method in ("order_by", "distinct", "latest", "earliest"):
            names = [const_value(a) for a in site.args]
            if method in ("latest", "earliest") and not names:
                gl = m.meta_value("get_latest_by")
                names = [gl] if isinstance(gl, str) else (gl if isinstance(gl, list) else [])
            if method == "order_by":
                q.explicit_order = True
            line = self.method_line(q.path, site, method)
            for name in names[:1]:  # the leading sort key decides whether an index can serve it
                if not isinstance(name, str) or name in ("?",) or "__" in name.lstrip("-"):
                    continue
                col = self.builder.column_of(m, name)
                table = self.table_of_field(m, name.lstrip("-"))
                if col and table:
                    q.usages.append(Usage(table, col, "order", line, site.col, site.end_line, site.end_col,
                                          name.lstrip("-"), m.qualified, f"{method}({name!r})"))

    def finish_django(self, q: Query, m: OrmModel, methods: list[str]) -> None:
        no_order = set(self.data.get("django_unordered_terminals", []))
        if not q.explicit_order and not any(x in no_order for x in methods) and not any(
                x in ("latest", "earliest", "distinct") for x in methods):
            q.uses_default_order = True
        self.queries.append(q)

    def table_of_field(self, m: OrmModel, name: str) -> str | None:
        """The table a field's column lives in (a concrete parent's table under MTI)."""
        if name in ("pk", "id") or name in m.table_fields or (name.endswith("_id") and name[:-3] in m.table_fields):
            return self.builder.model_table.get(m.qualified)
        for p in m.parents:
            pm = self.orm.model(p)
            if pm is not None:
                t = self.table_of_field(pm, name)
                if t:
                    return t
        return None

    def add_lookups(self, q: Query, m: OrmModel, site: CallSite, kwargs: dict[str, Any], method: str,
                    in_or: int = 0) -> None:
        line = self.method_line(q.path, site, method)
        if site.star_kwargs and method in ("filter", "get", "get_or_create", "update_or_create"):
            q.opaque_filter = True
        for key, value in kwargs.items():
            self._joins = []
            res = self.resolve_lookup(m, key)
            if res is None:
                q.opaque_filter = True
                continue
            if method != "exclude":
                for jt, jcol, jfield, jmodel in self._joins:
                    q.usages.append(Usage(jt, jcol, "join", line, site.col, site.end_line, site.end_col, jfield,
                                          jmodel, f"{key}=", in_or=in_or))
            model, table, col, fname, usage = res
            if value == ("const", None) and usage in ("eq", "iexact"):
                usage = "isnull"  # `field=None` / `field__iexact=None` is IS NULL in Django
            if method == "exclude":
                usage = "neg"
            q.usages.append(Usage(table, col, usage, line, site.col, site.end_line, site.end_col,
                                  fname, model.qualified, f"{key}=", in_or=in_or))

    def resolve_lookup(self, m: OrmModel, key: str) -> tuple[OrmModel, str, str, str, str] | None:
        parts = key.split("__")
        cur = m
        i = 0
        while i < len(parts):
            p = parts[i]
            rest = parts[i + 1:]
            if p == "pk":
                t = self.table_of_field(cur, "pk")
                tab = self.schema.table(t or "")
                col = tab.pk[0] if tab is not None and tab.pk else "id"
                return self.finish_lookup(cur, t, col, "pk", "other", rest)
            f = cur.fields.get(p)
            if f is None and p.endswith("_id") and p[:-3] in cur.fields and cur.fields[p[:-3]].relation in ("fk", "o2o"):
                f = cur.fields[p[:-3]]
                rest = ["id"] + rest if rest and rest[0] not in self.lookups else rest
            if f is None:
                rev = next((r for r in cur.reverse.values() if r.query_name == p), None)
                if rev is None:
                    if p == "id":
                        return self.finish_lookup(cur, self.table_of_field(cur, "id"), "id", "id", "number", rest)
                    return None
                src = self.orm.model(rev.source)
                if src is None or rev.kind == "m2m":
                    return None
                if not rest or rest[0] in self.lookups:
                    return None  # `filter(books=b)`: the join on the FK Django indexes
                sf = src.fields.get(rev.field)
                jt = self.table_of_field(src, rev.field) if sf is not None else None
                if jt and sf is not None and sf.column:
                    self._joins.append((jt, sf.column.lower(), rev.field, src.qualified))
                cur = src
                i += 1
                continue
            if f.relation in ("fk", "o2o"):
                target = self.orm.model(f.target) or self.user_model(f)
                if rest and rest[0] not in self.lookups:
                    nxt = rest[0]
                    if target is None:
                        return None
                    tpk = self.pk_field_name(target)
                    if nxt in ("pk", "id", tpk) and (len(rest) == 1 or rest[1] in self.lookups):
                        return self.finish_lookup(cur, self.table_of_field(cur, f.name), (f.column or "").lower(),
                                                  f.name, "fk", rest[1:])
                    jt = self.table_of_field(cur, f.name)
                    if jt and f.column:
                        self._joins.append((jt, f.column.lower(), f.name, cur.qualified))
                    cur = target
                    i += 1
                    continue
                return self.finish_lookup(cur, self.table_of_field(cur, f.name), (f.column or "").lower(), f.name,
                                          "fk", rest)
            if f.relation == "m2m":
                target = self.orm.model(f.target)
                if target is None or not rest or rest[0] in self.lookups:
                    return None
                cur = target
                i += 1
                continue
            if f.relation is not None:
                return None
            from backend_audit.analyzers.missing_index.builders import field_type

            return self.finish_lookup(cur, self.table_of_field(cur, f.name), (f.column or f.name).lower(), f.name,
                                      field_type(f, self.data), rest)
        return None

    def user_model(self, f: Any) -> OrmModel | None:
        """`ForeignKey(settings.AUTH_USER_MODEL)`: the project's custom user model, from the settings module."""
        if not f.target_label or not str(f.target_label).endswith("AUTH_USER_MODEL"):
            return None
        if self._user_model is None:
            self._user_model = ("",)
            for summary in self.index.summaries.values():
                a = summary.assigns.get("AUTH_USER_MODEL")
                label = const_value(a.value) if a is not None else None
                if isinstance(label, str) and "." in label:
                    app, name = label.rsplit(".", 1)
                    cands = [m for m in self.orm.models.values()
                             if m.framework == DJANGO and m.name == name and m.app_label == app]
                    if len(cands) == 1:
                        self._user_model = (cands[0].qualified,)
                        break
        return self.orm.model(self._user_model[0]) if self._user_model[0] else None

    @staticmethod
    def pk_field_name(m: OrmModel) -> str:
        for f in m.table_fields.values():
            if f.kw("primary_key"):
                return f.name
        return "id"

    def finish_lookup(self, m: OrmModel, table: str | None, col: str, fname: str, ftype: str,
                      rest: list[str]) -> tuple[OrmModel, str, str, str, str] | None:
        if not table or not col:
            return None
        if len(rest) > 1:
            return None  # transforms chained with lookups (`created__date__gte`): not modelled
        lookup = rest[0] if rest else "exact"
        usage = self.lookups.get(lookup)
        if usage is None or usage == "skip":
            return None
        if usage == "infix" and ftype not in ("text",):
            return None  # `contains` on JSON/array fields is containment, not LIKE
        if usage == "iexact":
            if ftype == "citext" or self.dialect == "mysql":
                usage = "eq"  # case-insensitive collation: a plain index serves it
            elif ftype not in ("text",):
                usage = "eq"
        if usage == "infix" and ftype == "citext":
            usage = "infix"
        return m, table, col, fname, usage

    def exists_then_create(self, q: Query, m: OrmModel, info: Any, members: list[int], sites: list) -> None:
        """`if not M.objects.filter(email=e).exists(): M.objects.create(email=e, ...)`."""
        methods = [sites[i][3].lstrip("a") if sites[i][3] in _ASYNC else sites[i][3] for i in members]
        if "exists" not in methods or q.unique_in_code is not None:
            return
        filters = [sites[i][0] for i in members if sites[i][3] == "filter"]
        if len(filters) != 1 or filters[0].args or filters[0].star_kwargs or not filters[0].kwargs:
            return
        keys = list(filters[0].kwargs)
        if any("__" in k for k in keys):
            return
        cols = {self.builder.column_of(m, k) for k in keys}
        if None in cols:
            return
        for site in info.summary.calls:
            if not site.ref or not site.ref.endswith((".create", ".acreate")):
                continue
            target = self.index.resolve(info.module, site.ref)
            found = self.model_and_chain(target) if target else None
            if found is None or found[0].qualified != m.qualified:
                continue
            if set(keys) <= set(site.kwargs) and site.line > filters[0].line:
                s = filters[0]
                line = self.method_line(q.path, s, "filter")
                q.unique_in_code = ("exists-then-create", {c for c in cols if c}, line, s.col, s.end_line, s.end_col)
                return

    # ----- SQLAlchemy ---------------------------------------------------------------------------
    def sa_column(self, module: str, owner: str, attr: str) -> tuple[OrmModel, str, str, str] | None:
        ref = self.index.resolve(module, owner)
        m = self.orm.model_of_ref(ref)
        if m is None or ref != m.qualified:
            m = self.table_var(module, owner)
            ref = m.qualified if m is not None else ref
        if m is None or m.framework == DJANGO:
            return None
        if ref != m.qualified:
            return None
        table = self.builder.model_table.get(m.qualified)
        if not table:
            return None
        f = m.table_fields.get(attr)
        if f is None or f.relation == "relationship":
            return None
        ftype = self.sa_field_type(m, attr)
        return m, table, (f.column or attr).lower(), ftype

    def table_var(self, module: str, owner: str) -> OrmModel | None:
        """`devices` / `.tables.devices` naming a module-level `Table(...)` variable: resolving the ref itself
        follows the variable's value (the `Table()` call), so resolve the module it lives in instead."""
        if owner.startswith("@"):
            m = self.orm.models.get(f"{module}.{owner[1:]}")
        elif "." in owner.strip("."):
            head, _, name = owner.rpartition(".")
            base = self.index.resolve(module, head) if head else None
            m = self.orm.models.get(f"{base}.{name}") if base else None
        else:
            m = None
        return m if m is not None and m.qualified not in self.index.classes else None

    def sa_field_type(self, m: OrmModel, attr: str) -> str:
        tab = self.schema.table(self.builder.model_table.get(m.qualified, ""))
        f = m.table_fields.get(attr)
        col = (f.column or attr).lower() if f else attr.lower()
        t = tab.columns[col].type if tab is not None and col in tab.columns else "other"
        if t == "other":
            cls = self.index.classes.get(f.declared_in if f else m.qualified)
            a = cls.summary.attrs.get(attr) if cls else None
            if a is not None and a.annotation and ("[str]" in a.annotation or "Optional[str]" in a.annotation
                                                   or "str | None" in a.annotation):
                return "text"
            if a is not None and a.annotation and "[bool]" in a.annotation:
                return "bool"
        return t

    def sqlalchemy(self) -> None:
        for path, facts in self.facts.items():
            if not isinstance(facts, dict) or not facts.get("sa") or is_test_path(path):
                continue
            module = self.index.module_of.get(path)
            if module is None:
                continue
            for chain in facts["sa"]:
                q = Query("sqlalchemy", path, chain["line"], chain["col"], chain.get("end_line") or chain["line"], 0)
                q.opaque_filter = not chain.get("complete", True)
                for c in chain["conds"]:
                    res = self.sa_column(module, c["owner"], c["attr"])
                    if res is None:
                        continue
                    m, table, col, ftype = res
                    usage = c["usage"]
                    if usage == "infix" and ftype != "text":
                        continue
                    if usage.startswith("func:"):
                        col = f"{usage[5:]}({col})"
                    if usage == "order":
                        q.explicit_order = True
                    q.usages.append(Usage(table, col, usage, c["line"], field=c["attr"], model=m.qualified,
                                          lookup=f"{m.name}.{c['attr']}", in_or=int(c.get("or") or 0)))
                    q.model = q.model or m.qualified
                    q.table = q.table or table
                for name, line in chain.get("order_names", []):
                    for ent in chain.get("entities", []):
                        res = self.sa_column(module, ent, name)
                        if res is not None:
                            m, table, col, _ = res
                            q.explicit_order = True
                            q.usages.append(Usage(table, col, "order", line, field=name, model=m.qualified,
                                                  lookup=f"order_by({name!r})"))
                            break
                for name, line in chain.get("filter_by", []):
                    for ent in chain.get("entities", []):
                        res = self.sa_column(module, ent, name)
                        if res is not None:
                            m, table, col, _ = res
                            q.usages.append(Usage(table, col, "eq", line, field=name, model=m.qualified,
                                                  lookup=f"filter_by({name}=...)"))
                            q.model = q.model or m.qualified
                            q.table = q.table or table
                            break
                if q.usages:
                    q.symbol = self.symbol_at(path, q.line)
                    self.sa_exists_then_create(q, path, module)
                    self.queries.append(q)

    def sa_exists_then_create(self, q: Query, path: str, module: str) -> None:
        """`if not session.query(User).filter_by(email=e).first(): session.add(User(email=e))`."""
        eqs = [u for u in q.usages if u.usage == "eq" and u.model]
        if not eqs or not q.symbol or len({u.model for u in eqs}) != 1 or len(eqs) != len(
                [u for u in q.usages if u.usage not in ("order",)]):
            return
        model = eqs[0].model
        info = self.index.function_at(path, q.symbol)
        if info is None:
            return
        fields = {u.field for u in eqs if u.field}
        for site in info.summary.calls:
            if site.line <= q.line or not site.ref or site.ref.startswith("$"):
                continue
            if self.index.resolve(module, site.ref) != model:
                continue
            if fields and fields <= set(site.kwargs):
                u = eqs[0]
                q.table = u.table
                q.unique_in_code = ("exists-then-create", {e.column for e in eqs}, u.line, u.col,
                                    u.end_line or u.line, u.end_col)
                return

    def symbol_at(self, path: str, line: int) -> str:
        s = self.index.summaries.get(path)
        best = ""
        best_span = 10 ** 9
        if s is None:
            return ""
        for qual, fn in s.functions.items():
            if qual == "<module>" or fn.is_lambda:
                continue
            if fn.line <= line <= fn.end_line and fn.end_line - fn.line < best_span:
                best, best_span = qual, fn.end_line - fn.line
        return best

    # ----- raw SQL ------------------------------------------------------------------------------
    def raw_sql(self) -> None:
        for path, facts in self.facts.items():
            if not isinstance(facts, dict) or is_test_path(path) or self.builder.is_migration(path):
                continue  # a migration's data fix runs once: not the workload
            module = self.index.module_of.get(path, "")
            for fact in facts.get("sql", []):
                if fact.get("kind") != "query":
                    continue
                line = fact.get("string_line", fact["line"])
                q = Query("sql", path, line, 0, line, 0)
                refs = fact.get("table_refs") or {}
                for u in fact["usages"]:
                    cands = [self.db_table(module, refs[t]) if t in refs else t for t in u["tables"]] if refs \
                        else u["tables"]
                    table = self.pick_table([t for t in cands if t], u["column"])
                    if table is None:
                        continue
                    usage = u["usage"]
                    col = u["column"]
                    if usage.startswith("func:"):
                        col = f"{usage[5:]}({col})"
                    tab = self.schema.table(table)
                    ctype = tab.columns[u["column"]].type if tab and u["column"] in tab.columns else "other"
                    if usage == "infix" and ctype not in ("text", "other", "citext"):
                        continue
                    if usage == "order":
                        q.explicit_order = True
                    q.usages.append(Usage(table, col, usage, u["line"] or line, lookup=u["column"], in_or=int(u.get("or") or 0),
                                          field=tab.columns[u["column"]].field if tab and u["column"] in tab.columns else None,
                                          model=tab.model if tab else None))
                if q.usages:
                    q.symbol = self.symbol_at(path, line) if path in self.index.summaries else ""
                    self.queries.append(q)

    def db_table(self, module: str, ref: str) -> str | None:
        """The table of `Model._meta.db_table` written in an f-string (the model may live in another module)."""
        if not module:
            return None
        m = self.orm.model_of_ref(self.index.resolve(module, ref))
        return self.builder.model_table.get(m.qualified) if m is not None else None

    def pick_table(self, candidates: list[str], column: str) -> str | None:
        known = [t for t in candidates if self.schema.table(t) is not None]
        with_col = [t for t in known if column in self.schema.tables[t.lower()].columns]
        if len(with_col) == 1:
            return with_col[0].lower()
        if len(candidates) == 1 and len(known) == 1:
            tab = self.schema.tables[known[0].lower()]
            if column in tab.columns:
                return tab.name
        return None


def _or_operands(v: Any) -> list[Any]:
    """`Q(a) | Q(b) & Q(c)` -> [Q(a), Q(b) & Q(c)]: the groups an OR needs an index for, each."""
    if v[0] == "binop" and v[1] == "BitOr":
        return _or_operands(v[2]) + _or_operands(v[3])
    return [v]


_ASYNC = frozenset({"aget", "aget_or_create", "aupdate_or_create", "alatest", "aearliest", "afirst", "alast",
                    "aexists", "acount", "aupdate", "adelete"})


def is_test_path(path: str) -> bool:
    """Tests exercise queries; they are not the production workload."""
    parts = path.lower().split("/")
    name = parts[-1]
    return any(p in ("tests", "test", "testing") for p in parts[:-1]) or name.startswith("test_") \
        or name.endswith(("_test.py", "_tests.py", "tests.py")) or name == "conftest.py"


__all__ = ["Query", "Usage", "Workload", "is_test_path", "str_list"]
