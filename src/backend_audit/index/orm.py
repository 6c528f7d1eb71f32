"""The ORM model graph of the project: Django models and SQLAlchemy mapped classes and tables.

Built from the project index (class summaries), never by parsing again, and shared by the N+1 and
missing-index analyzers. Which classes are models and which calls declare fields comes from the
`[catalog.orm]` data in `rules/orm.toml`.

    orm = orm_index(ctx.index, ctx.catalog)
    book = orm.models["shop.models.Book"]
    book.fields["author"].relation   -> "fk"
    book.fields["author"].target     -> "shop.models.Author"
    orm.models["shop.models.Author"].reverse["books"]  -> ReverseRelation(source="shop.models.Book", ...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backend_audit.catalog import Catalog
from backend_audit.index.project import ClassInfo, ProjectIndex
from backend_audit.parsing.summary import Value, const_value

DJANGO = "django"
SQLALCHEMY = "sqlalchemy"


@dataclass
class ModelField:
    name: str
    field_type: str  # canonical ref of the field class / column constructor
    line: int
    path: str
    kwargs: dict[str, Value] = field(default_factory=dict)
    args: list[Value] = field(default_factory=list)
    #: "fk", "o2o", "m2m", "gfk", "generic-relation", "relationship" (SQLAlchemy), or None
    relation: str | None = None
    target: str | None = None  # qualified name of the related project model, when known
    target_label: str | None = None  # the target as written: "auth.User", "Author", "self"
    column: str | None = None  # database column (Django FK: "<name>_id")
    related_name: str | None = None
    related_query_name: str | None = None
    declared_in: str = ""  # qualified name of the class that declares it (abstract bases)
    #: a relation whose `target` stays None because it points outside the project's own graph:
    #: `settings.AUTH_USER_MODEL` / `get_user_model()` (the project's custom user model when the
    #: settings name one in the repo) or a well-known external model (`OrmIndex.external`)
    external_target: str | None = None

    def kw(self, name: str, default: Any = None) -> Any:
        return const_value(self.kwargs.get(name), default)


@dataclass
class ReverseRelation:
    accessor: str  # attribute name on the target: related_name or "<model>_set"
    query_name: str  # name in lookups (`author__books__title`)
    source: str  # qualified name of the model declaring the relation
    field: str  # field name on the source
    kind: str  # "fk", "o2o", "m2m", "generic-relation"


@dataclass
class OrmModel:
    qualified: str
    name: str
    module: str
    path: str
    line: int
    framework: str  # "django" | "sqlalchemy"
    table: str | None = None
    abstract: bool = False
    app_label: str | None = None
    #: every field reachable as an attribute (own, abstract-inherited and concrete-parent fields)
    fields: dict[str, ModelField] = field(default_factory=dict)
    #: fields stored in this model's own table (own + from abstract bases)
    table_fields: dict[str, ModelField] = field(default_factory=dict)
    #: Django `class Meta` attributes / SQLAlchemy `__table_args__` (descriptors)
    meta: dict[str, Value] = field(default_factory=dict)
    meta_lines: dict[str, int] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)  # concrete project model parents (MTI)
    reverse: dict[str, ReverseRelation] = field(default_factory=dict)
    managers: dict[str, str | None] = field(default_factory=dict)  # attr -> manager class ref
    #: SQLAlchemy attributes created on this class by another class's `relationship(..., backref=...)`
    #: (kept apart from `fields`: they declare no column)
    backrefs: dict[str, ModelField] = field(default_factory=dict)

    def meta_value(self, key: str, default: Any = None) -> Any:
        return const_value(self.meta.get(key), default)


class OrmIndex:
    def __init__(self, index: ProjectIndex, catalog: Catalog):
        self.index = index
        data = catalog.section("orm")
        self._dj = data.get("django", {})
        self._sa = data.get("sqlalchemy", {})
        self.external_django_models: dict[str, str] = dict(self._dj.get("external_models", {}))
        self.models: dict[str, OrmModel] = {}
        #: well-known models defined outside the repository (`auth.User`...), keyed by their canonical
        #: class ref, with the reverse relations project models give them; never in `models`
        self.external: dict[str, OrmModel] = {}
        #: the project model `AUTH_USER_MODEL` names in the settings, when it is in the repository
        self.user_model: str | None = None
        self._by_name: dict[str, list[str]] = {}
        self._by_table: dict[str, str] = {}
        self._build()

    # ----- lookups -------------------------------------------------------------------------
    def model(self, qualified: str | None) -> OrmModel | None:
        return self.models.get(qualified) if qualified else None

    def by_table(self, table: str) -> OrmModel | None:
        q = self._by_table.get(table.lower())
        return self.models.get(q) if q else None

    def model_of_ref(self, ref: str | None) -> OrmModel | None:
        """The model a canonical ref starts with: `shop.models.Book.objects.filter()` -> Book."""
        if not ref:
            return None
        head = ref
        while head:
            if head in self.models:
                return self.models[head]
            if "." not in head:
                return None
            head = head.rsplit(".", 1)[0]
        return None

    def lookup_label(self, label: str, from_model: OrmModel) -> str | None:
        """Resolve a lazy model reference ("self", "Author", "shop.Author") to a qualified name."""
        if label == "self":
            return from_model.qualified
        if "." in label:
            app, name = label.rsplit(".", 1)
            candidates = [q for q in self._by_name.get(name, []) if self.models[q].app_label == app]
            if not candidates:
                candidates = [q for q in self._by_name.get(name, []) if q.startswith(app + ".") or f".{app}." in q]
        else:
            name = label
            same_module = f"{from_model.module}.{name}"
            if same_module in self.models:
                return same_module
            candidates = [q for q in self._by_name.get(name, [])
                          if self.models[q].app_label == from_model.app_label] or self._by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None

    # ----- building --------------------------------------------------------------------------
    def _build(self) -> None:
        dj_bases = set(self._dj.get("model_bases", []))
        sa_bases = set(self._sa.get("declarative_bases", []))
        for q, info in self.index.classes.items():
            ancestors = self.index.ancestors(q)
            if ancestors & dj_bases:
                self._add_django(info)
            elif ancestors & sa_bases and q not in self._declarative_roots(info, sa_bases):
                self._add_sqlalchemy(info)
        self._add_sqlalchemy_tables()
        for m in self.models.values():
            self._by_name.setdefault(m.name, []).append(m.qualified)
        for m in self.models.values():
            if m.framework == DJANGO:
                self._link_django(m)
        for m in self.models.values():
            if m.framework == DJANGO:
                self._inherit_django(m)
            elif m.framework == SQLALCHEMY:
                self._link_sqlalchemy(m)
        for m in self.models.values():
            if m.table and not m.abstract:
                self._by_table.setdefault(m.table.lower(), m.qualified)
        for m in list(self.models.values()):
            if m.framework == DJANGO and not m.abstract:
                self._add_reverse(m)
        for m in list(self.models.values()):
            if m.framework == SQLALCHEMY:
                self._add_backrefs(m)
        self._link_external()

    def _declarative_roots(self, info: ClassInfo, sa_bases: set[str]) -> set[str]:
        """`class Base(DeclarativeBase): pass` is the registry, not a mapped class."""
        has_table = "__tablename__" in info.summary.attrs or "__table__" in info.summary.attrs
        direct = set(info.bases) & sa_bases
        if direct and not has_table and not any(self._is_column(info, a.value) for a in info.summary.attrs.values()):
            return {info.qualified}
        if info.summary.attrs.get("__abstract__") and const_value(info.summary.attrs["__abstract__"].value):
            return {info.qualified}
        return set()

    def _resolve(self, module: str, value: Value) -> str | None:
        return self.index.resolve_value(module, value)

    def _call_ref(self, module: str, value: Value) -> str | None:
        if value[0] != "call" or not value[1]:
            return None
        return self.index.resolve(module, value[1])

    # Django ------------------------------------------------------------------------------
    def _add_django(self, info: ClassInfo) -> None:
        s = info.summary
        m = OrmModel(qualified=info.qualified, name=s.name, module=info.module, path=info.path,
                     line=s.line, framework=DJANGO)
        meta_q = f"{info.qualified}.Meta"
        meta = self.index.classes.get(meta_q)
        if meta is not None:
            for k, a in meta.summary.attrs.items():
                m.meta[k] = a.value
                m.meta_lines[k] = a.line
        m.abstract = bool(m.meta_value("abstract", False))
        module_parts = info.module.split(".")
        default_label = module_parts[-2] if len(module_parts) >= 2 and module_parts[-1] == "models" else \
            (module_parts[-3] if len(module_parts) >= 3 and module_parts[-2] == "models" else module_parts[0])
        m.app_label = m.meta_value("app_label", default_label)
        m.table = m.meta_value("db_table") or f"{m.app_label}_{s.name.lower()}"
        fk = set(self._dj.get("foreign_key", []))
        o2o = set(self._dj.get("one_to_one", []))
        m2m = set(self._dj.get("many_to_many", []))
        gfk = set(self._dj.get("generic_foreign_key", []))
        grel = set(self._dj.get("generic_relation", []))
        field_modules = tuple(p + "." for p in self._dj.get("field_modules", []))
        managers = tuple(self._dj.get("manager_bases", []))
        for name, attr in s.attrs.items():
            ref = self._call_ref(info.module, attr.value)
            if ref is None:
                continue
            relation = ("fk" if ref in fk else "o2o" if ref in o2o else "m2m" if ref in m2m
                        else "gfk" if ref in gfk else "generic-relation" if ref in grel else None)
            is_field = relation is not None or (ref.startswith(field_modules) and ref.endswith("Field")) \
                or self._is_project_field_class(ref)
            if is_field:
                _, _, args, kwargs = attr.value
                f = ModelField(name=name, field_type=ref, line=attr.line, path=info.path, kwargs=kwargs,
                               args=args, relation=relation, declared_in=info.qualified)
                if relation in ("fk", "o2o", "m2m", "generic-relation"):
                    target = kwargs.get("to") or (args[0] if args else None)
                    if target is not None:
                        if target[0] == "const" and isinstance(target[1], str):
                            f.target_label = target[1]
                        else:
                            f.target_label = self._resolve(info.module, target)
                    rn = const_value(kwargs.get("related_name"))
                    f.related_name = rn if isinstance(rn, str) else None
                    rq = const_value(kwargs.get("related_query_name"))
                    f.related_query_name = rq if isinstance(rq, str) else None
                if relation in ("fk", "o2o"):
                    f.column = const_value(kwargs.get("db_column")) or f"{name}_id"
                elif relation is None:
                    f.column = const_value(kwargs.get("db_column")) or name
                m.fields[name] = f
            elif ref.endswith(".as_manager") or ref in managers or self.index.is_subclass(ref, set(managers)) \
                    or self._is_from_queryset_manager(ref, managers):
                m.managers[name] = ref
        self.models[m.qualified] = m

    def _is_from_queryset_manager(self, ref: str, managers: tuple) -> bool:
        """`Manager.from_queryset(QS)()` or a class whose base is `Manager.from_queryset(QS)`."""
        marks = tuple(f"{b}.from_queryset" for b in managers)
        if ref.startswith(marks):
            return True
        cls = ref.removesuffix("()")
        if cls not in self.index.classes:
            return False
        return any(a.startswith(marks) or a.endswith(".from_queryset()") for a in self.index.ancestors(cls))

    def _is_project_field_class(self, ref: str) -> bool:
        cls = ref[:-2] if ref.endswith("()") else ref
        if cls not in self.index.classes:
            return False
        field_modules = tuple(p + "." for p in self._dj.get("field_modules", []))
        return any(a.startswith(field_modules) and a.endswith("Field") for a in self.index.ancestors(cls))

    def _link_django(self, m: OrmModel) -> None:
        for f in m.fields.values():
            if f.target_label is None:
                continue
            if f.target_label in self.models:
                f.target = f.target_label
            else:
                f.target = self.lookup_label(f.target_label, m)
        m.parents = [b for b in self.index.classes[m.qualified].bases
                     if b in self.models and not self.models[b].abstract]

    def _inherit_django(self, m: OrmModel) -> None:
        """Abstract bases contribute fields to the table; concrete parents (MTI) only as attributes."""
        reachable: dict[str, ModelField] = {}
        for ancestor in reversed(self.index.mro(m.qualified)):
            base = self.models.get(ancestor)
            if base is not None:
                reachable.update({n: f for n, f in base.fields.items() if f.declared_in == ancestor})
        table_fields: dict[str, ModelField] = {}
        for ancestor in reversed(self._table_lineage(m.qualified)):
            base = self.models[ancestor]
            table_fields.update({n: f for n, f in base.fields.items() if f.declared_in == ancestor})
            if ancestor != m.qualified:
                for k, v in base.meta.items():  # abstract Meta options (ordering, indexes) are inherited
                    if k not in m.meta and k not in ("abstract", "db_table"):
                        m.meta[k] = v
                        m.meta_lines[k] = base.meta_lines.get(k, base.line)
        for parent in m.parents:  # the implicit parent link column
            ptr = f"{self.models[parent].name.lower()}_ptr"
            table_fields.setdefault(ptr, ModelField(ptr, "django.db.models.OneToOneField", m.line, m.path,
                                                    relation="o2o", target=parent, column=f"{ptr}_id",
                                                    declared_in=m.qualified))
        m.fields = reachable
        m.table_fields = table_fields

    def _table_lineage(self, qualified: str) -> list[str]:
        """The model and the abstract models whose fields land in its table (not through a concrete parent)."""
        out = [qualified]
        stack = [qualified]
        while stack:
            for b in self.index.classes[stack.pop()].bases:
                base = self.models.get(b)
                if base is not None and base.abstract and b not in out:
                    out.append(b)
                    stack.append(b)
        return out

    def _add_reverse(self, m: OrmModel) -> None:
        for f in m.table_fields.values():
            if f.relation not in ("fk", "o2o", "m2m") or not f.target or f.target not in self.models:
                continue
            if f.related_name and f.related_name.endswith("+"):
                continue
            lower = m.name.lower()
            accessor = f.related_name or (lower if f.relation == "o2o" else f"{lower}_set")
            query = f.related_query_name or f.related_name or lower
            target = self.models[f.target]
            rel = ReverseRelation(accessor, query, m.qualified, f.name, f.relation)
            target.reverse.setdefault(accessor, rel)

    # Django relations leaving the project graph ----------------------------------------------
    def external_ref(self, label: str) -> str | None:
        """"auth.User" -> "django.contrib.auth.models.User" for a catalogued external model."""
        if label not in self.external_django_models or "." not in label:
            return None
        app, name = label.rsplit(".", 1)
        module = dict(_EXTERNAL_MODULES, **self._dj.get("external_model_modules", {})).get(app)
        return f"{module}.{name}" if module else None

    def user_model_ref(self) -> str | None:
        """What `settings.AUTH_USER_MODEL` / `get_user_model()` is: the project's model, else auth.User."""
        return self.user_model or self.external_ref("auth.User")

    def _find_user_model(self) -> str | None:
        for summary in self.index.summaries.values():
            a = summary.assigns.get("AUTH_USER_MODEL")
            label = const_value(a.value) if a is not None else None
            if isinstance(label, str) and "." in label:
                app, name = label.rsplit(".", 1)
                cands = [q for q in self._by_name.get(name, [])
                         if self.models[q].framework == DJANGO and self.models[q].app_label == app]
                if len(cands) == 1:
                    return cands[0]
        return None

    def _external_label(self, target_label: str) -> str | None:
        if target_label in self.external_django_models:
            return target_label
        modules = dict(_EXTERNAL_MODULES, **self._dj.get("external_model_modules", {}))
        mod, _, name = target_label.rpartition(".")
        for app, module in modules.items():
            if mod == module and f"{app}.{name}" in self.external_django_models:
                return f"{app}.{name}"
        return None

    def _external_model(self, label: str) -> OrmModel | None:
        ref = self.external_ref(label)
        if ref is None:
            return None
        m = self.external.get(ref)
        if m is None:
            app, name = label.rsplit(".", 1)
            m = OrmModel(qualified=ref, name=name, module=ref.rsplit(".", 1)[0], path="", line=0,
                         framework=DJANGO, table=self.external_django_models.get(label), app_label=app)
            self.external[ref] = m
        return m

    def _link_external(self) -> None:
        """Relations to `settings.AUTH_USER_MODEL`, `get_user_model()`, `auth.User`...: the target's reverse
        accessors (`user.posts`) exist even though the target is not a project model (additive: `target`
        and the project graph built above are left as they are)."""
        if self.external_django_models:
            self.user_model = self._find_user_model()
        for m in list(self.models.values()):
            if m.framework != DJANGO or m.abstract:
                continue
            for f in m.table_fields.values():
                if f.relation not in ("fk", "o2o", "m2m") or f.target or not isinstance(f.target_label, str):
                    continue
                if f.target_label in _USER_MODEL_REFS:
                    target = self.models.get(self.user_model) if self.user_model else None
                    if target is None:
                        target = self._external_model("auth.User")
                else:
                    label = self._external_label(f.target_label)
                    target = self._external_model(label) if label else None
                if target is None:
                    continue
                f.external_target = target.qualified
                if f.related_name and f.related_name.endswith("+"):
                    continue
                lower = m.name.lower()
                accessor = f.related_name or (lower if f.relation == "o2o" else f"{lower}_set")
                query = f.related_query_name or f.related_name or lower
                target.reverse.setdefault(accessor, ReverseRelation(accessor, query, m.qualified, f.name, f.relation))

    # SQLAlchemy --------------------------------------------------------------------------
    def _is_column(self, info: ClassInfo, value: Value) -> bool:
        ref = self._call_ref(info.module, value)
        return bool(ref) and ref in set(self._sa.get("columns", []))

    def _add_sqlalchemy(self, info: ClassInfo) -> None:
        s = info.summary
        table = const_value(s.attrs["__tablename__"].value) if "__tablename__" in s.attrs else None
        m = OrmModel(qualified=info.qualified, name=s.name, module=info.module, path=info.path,
                     line=s.line, framework=SQLALCHEMY, table=table)
        columns = set(self._sa.get("columns", []))
        relationships = set(self._sa.get("relationships", []))
        if "__table_args__" in s.attrs:
            m.meta["__table_args__"] = s.attrs["__table_args__"].value
            m.meta_lines["__table_args__"] = s.attrs["__table_args__"].line
        for name, attr in s.attrs.items():
            if name.startswith("__"):
                continue
            ref = self._call_ref(info.module, attr.value)
            if ref in columns:
                _, _, args, kwargs = attr.value
                f = ModelField(name, ref, attr.line, info.path, kwargs=kwargs, args=args, declared_in=info.qualified)
                explicit = next((a[1] for a in args if a[0] == "const" and isinstance(a[1], str)), None)
                f.column = explicit or name
                fk = self._foreign_key(info.module, args)
                if fk:
                    f.relation = "fk"
                    f.target_label = fk
                m.fields[name] = f
            elif ref in relationships:
                _, _, args, kwargs = attr.value
                f = ModelField(name, ref, attr.line, info.path, kwargs=kwargs, args=args,
                               relation="relationship", declared_in=info.qualified)
                target = args[0] if args else kwargs.get("argument")
                if target is not None and target[0] == "const" and isinstance(target[1], str):
                    f.target_label = target[1]
                elif target is not None:
                    f.target_label = self._resolve(info.module, target)
                elif attr.annotation:
                    f.target_label = _annotation_target(attr.annotation)
                m.fields[name] = f
            elif ref is None and attr.annotation and "Mapped[" in attr.annotation and attr.value == ("?",):
                m.fields[name] = ModelField(name, "sqlalchemy.orm.Mapped", attr.line, info.path,
                                            column=name, declared_in=info.qualified)
        self.models[m.qualified] = m

    def _foreign_key(self, module: str, args: list[Value]) -> str | None:
        fks = set(self._sa.get("foreign_keys", []))
        for a in args:
            if a[0] == "call" and a[1] and self.index.resolve(module, a[1]) in fks and a[2]:
                target = a[2][0]
                if target[0] == "const" and isinstance(target[1], str):
                    return target[1]  # "table.column"
                r = self._resolve(module, target)
                if r:
                    return r
        return None

    def _link_sqlalchemy(self, m: OrmModel) -> None:
        # mixins and abstract bases contribute columns
        for ancestor in reversed(self.index.mro(m.qualified)[1:]):
            info = self.index.classes[ancestor]
            if ancestor in self.models:
                continue
            for name, attr in info.summary.attrs.items():
                if name not in m.fields and self._is_column(info, attr.value):
                    _, _, args, kwargs = attr.value
                    m.fields[name] = ModelField(name, self._call_ref(info.module, attr.value) or "", attr.line,
                                                info.path, kwargs=kwargs, args=args, column=name,
                                                declared_in=ancestor)
        for f in m.fields.values():
            if f.relation == "relationship" and f.target_label:
                label = f.target_label
                if label in self.models:
                    f.target = label
                else:
                    candidates = self._by_name.get(label.rsplit(".", 1)[-1], [])
                    f.target = candidates[0] if len(candidates) == 1 else None
        m.table_fields = dict(m.fields)

    def _add_backrefs(self, m: OrmModel) -> None:
        """`relationship("Post", backref="author")` / `backref("author", lazy=...)` adds `Post.author`."""
        for f in m.fields.values():
            if f.relation != "relationship" or not f.target or f.target not in self.models:
                continue
            b = f.kwargs.get("backref")
            if b is None:
                continue
            kwargs: dict[str, Value] = {}
            if b[0] == "const" and isinstance(b[1], str):
                name = b[1]
            elif b[0] == "call" and b[2] and b[2][0][0] == "const" and isinstance(b[2][0][1], str):
                name, kwargs = b[2][0][1], dict(b[3])
            else:
                continue
            target = self.models[f.target]
            if name in target.fields:
                continue
            target.backrefs.setdefault(name, ModelField(
                name, f.field_type, f.line, f.path, kwargs=kwargs, relation="relationship", target=m.qualified,
                target_label=m.name, declared_in=m.qualified))

    def _add_sqlalchemy_tables(self) -> None:
        """`books = Table("books", metadata, Column(...), ...)` at module level."""
        tables = set(self._sa.get("tables", []))
        columns = set(self._sa.get("columns", []))
        for path, summary in self.index.summaries.items():
            module = self.index.module_of[path]
            for var, attr in summary.assigns.items():
                v = attr.value
                if v[0] != "call" or not v[1] or self.index.resolve(module, v[1]) not in tables:
                    continue
                args = v[2]
                if not args or args[0][0] != "const" or not isinstance(args[0][1], str):
                    continue
                q = f"{module}.{var}"
                m = OrmModel(qualified=q, name=var, module=module, path=path, line=attr.line,
                             framework=SQLALCHEMY, table=args[0][1])
                for a in args[2:]:
                    if a[0] == "call" and a[1] and self.index.resolve(module, a[1]) in columns and a[2]:
                        first = a[2][0]
                        if first[0] == "const" and isinstance(first[1], str):
                            f = ModelField(first[1], self.index.resolve(module, a[1]) or "", attr.line, path,
                                           kwargs=a[3], args=a[2], column=first[1], declared_in=q)
                            fk = self._foreign_key(module, a[2])
                            if fk:
                                f.relation, f.target_label = "fk", fk
                            m.fields[f.name] = f
                    elif a[0] == "call":
                        m.meta.setdefault("table_items", ("list", []))[1].append(a)
                m.table_fields = dict(m.fields)
                self.models[q] = m


#: where the catalogued external models (`[catalog.orm.django.external_models]`) live, by app label
_EXTERNAL_MODULES = {"auth": "django.contrib.auth.models", "contenttypes": "django.contrib.contenttypes.models",
                     "sites": "django.contrib.sites.models"}
#: target refs that mean "the user model" (`ForeignKey(settings.AUTH_USER_MODEL)`, `ForeignKey(get_user_model())`)
_USER_MODEL_REFS = frozenset({"django.conf.settings.AUTH_USER_MODEL", "django.contrib.auth.get_user_model()",
                              "django.contrib.auth.get_user_model", "settings.AUTH_USER_MODEL"})

_QUOTED = re.compile(r"""["']([A-Za-z_][\w.]*)["']|\b([A-Z]\w*)\b""")


def _annotation_target(annotation: str) -> str | None:
    """`Mapped[list["Book"]]` -> "Book"; `Mapped["Author"]` -> "Author"; `Mapped[Optional[Author]]` -> "Author"."""
    inner = annotation.split("[", 1)[1] if "[" in annotation else annotation
    for m in _QUOTED.finditer(inner):
        name = m.group(1) or m.group(2)
        if name not in ("List", "Optional", "Set", "Mapped", "Union", "Dict", "None", "WriteOnlyMapped", "DynamicMapped"):
            return name
    return None


def orm_index(index: ProjectIndex, catalog: Catalog) -> OrmIndex:
    """The model graph for this index, built once and shared by every analyzer."""
    cached = getattr(index, "_orm_index", None)
    if cached is None:
        cached = OrmIndex(index, catalog)
        index._orm_index = cached  # type: ignore[attr-defined]
    return cached
