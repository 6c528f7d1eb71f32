"""Abstract values of the N+1 evaluator and the events (queries) that evaluating code produces."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

# Val.kind
UNKNOWN = "unknown"
MODEL = "model"  # a model class (Django or SQLAlchemy)
QS = "qs"  # a Django manager / queryset of model rows
VALUES = "values"  # values() / values_list(): rows are dicts / tuples
ROWS = "rows"  # an evaluated list of model rows (list(qs), a prefetched manager's .all())
ROW = "row"  # one model instance
RELMGR = "relmgr"  # a Django related manager (reverse FK, M2M) on a row
PREFETCH = "prefetch"  # a django.db.models.Prefetch object
SA_SEL = "sa_select"  # a SQLAlchemy select(M) statement
SA_Q = "sa_query"  # a legacy Query / Flask-SQLAlchemy Model.query
SA_RES = "sa_result"  # session.scalars(...) / execute(...).scalars(): iterable of rows
SA_EXEC = "sa_exec"  # session.execute(select(M)): Row tuples, `.scalars()` gives models
SA_ATTR = "sa_attr"  # Model.relationship (class-level attribute, for loader options)
SA_OPT = "sa_option"  # a loader option: extra = ((path, loaded), ...)
SA_REL = "sa_rel"  # a loaded relationship on a row: a collection or a scalar
SA_DYN = "sa_dynamic"  # lazy="dynamic"/"write_only" relationship: a query per access
FUNC = "func"  # a project function
CLASS = "class"  # a project (non-model) class
INSTANCE = "instance"  # an instance of a project class (self)
SUPER = "super"  # super() inside a method of `extra`
EXT = "ext"  # an external object known by its canonical ref (extra)
ENUM = "enum"  # enumerate(x): (index, item) pairs of `inner`
DICT = "dict"  # a literal dict: extra = ((key, desc), ...), inner function ctx in `ctx`
LIST = "list"  # a literal list/tuple: extra = descs


# Not `frozen=True`: a frozen dataclass's __init__ sets each of the 15 fields through
# `object.__setattr__`, and building values is the evaluator's hottest path. Nothing assigns to a
# Val after construction (treat it as immutable); `unsafe_hash=True` keeps the frozen class's hash.
@dataclass(unsafe_hash=True, slots=True)
class Val:
    kind: str = UNKNOWN
    model: str | None = None
    #: eager-loaded relation paths, Django style `a__b` (SQLAlchemy paths are stored the same way);
    #: "*" = select_related() without arguments (every non-null FK)
    loaded: frozenset = frozenset()
    only: frozenset | None = None
    defer: frozenset = frozenset()
    #: a row produced by one iteration of a loop over rows (or reached from one)
    per_iter: bool = False
    #: (path, line, col, end_line, end_col) of the expression that builds the queryset
    origin: tuple | None = None
    #: something in the chain is not understood: never report from this value
    uncertain: bool = False
    #: line where the query chain was started (for "built inside the loop")
    built: int = 0
    extra: Any = None
    inner: Val | None = None
    #: "django" / "sqlalchemy" for model-ish values
    fw: str = ""
    #: the relation path from the queryset's rows to this row ("author__", "posts__")
    prefix: str = ""
    #: the path from the queryset passes through a to-many relation (fixes use prefetch_related)
    many: bool = False
    #: rows fetched through `owner.<reverse FK manager>`: (fk field name, the owner row); Django caches
    #: that FK on each row, so reading it returns the owner without a query
    owner: tuple | None = None

    def but(self, **kw: Any) -> Val:
        """`dataclasses.replace(self, **kw)`, spelled out (a hot path)."""
        if not kw.keys() <= _VAL_FIELDS:
            return replace(self, **kw)  # raises its TypeError for an unknown field
        get = kw.get
        return Val(get("kind", self.kind), get("model", self.model), get("loaded", self.loaded),
                   get("only", self.only), get("defer", self.defer), get("per_iter", self.per_iter),
                   get("origin", self.origin), get("uncertain", self.uncertain), get("built", self.built),
                   get("extra", self.extra), get("inner", self.inner), get("fw", self.fw),
                   get("prefix", self.prefix), get("many", self.many), get("owner", self.owner))


_VAL_FIELDS = frozenset(f.name for f in fields(Val))
assert tuple(f.name for f in fields(Val)) == (  # the order `Val.but` passes them in
    "kind", "model", "loaded", "only", "defer", "per_iter", "origin", "uncertain", "built", "extra", "inner", "fw",
    "prefix", "many", "owner")

UNK = Val()


@dataclass
class Event:
    """Something that runs a query (or a remote call) when the code runs once."""

    kind: str  # fk, gfk, mgr, mgr_count, mgr_query, deferred, query, qs_eval, write, sa_lazy, sa_query, raw, http, call
    line: int
    col: int
    end_line: int
    end_col: int
    path: str
    detail: dict[str, Any] = field(default_factory=dict)
    #: callee events (for kind "call")
    inner: list[Event] = field(default_factory=list)


def sub_paths(loaded: frozenset, name: str) -> frozenset:
    """`{"author", "author__publisher", "tags"}` under "author" -> `{"publisher"}`."""
    prefix = name + "__"
    return frozenset(p[len(prefix):] for p in loaded if p.startswith(prefix))


def top(loaded: frozenset) -> set[str]:
    return {p.split("__", 1)[0] for p in loaded}


def add_path(loaded: set, path: str) -> None:
    parts = path.split("__")
    for i in range(1, len(parts) + 1):
        loaded.add("__".join(parts[:i]))
