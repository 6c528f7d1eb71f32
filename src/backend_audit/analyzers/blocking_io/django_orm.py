"""Which canonical refs are synchronous Django ORM operations (BA404).

A ref such as `shop.models.Book.objects.filter().first` is read left to right as a tiny type
walk: a model class, its manager (`objects`, a declared manager, a project Manager/QuerySet
subclass), lazy queryset-building methods (`filter`, `order_by`, ...), and finally the method
that is called. Building a queryset never touches the database; `first()`, `count()`, `save()`,
`related.add()` and evaluating a queryset (iteration, `list()`, `len()`) do. The method tables
(lazy, blocking -> async alternative) are catalog data.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend_audit.analyzers.blocking_io.model import DjangoModel
from backend_audit.index.project import ProjectIndex, split_ref, strip_markers

MODEL, MANAGER, QUERYSET, INSTANCE, RELATED = "model", "manager", "queryset", "instance", "related"
#: blocking methods whose result is a model instance
INSTANCE_RESULTS = frozenset({"get", "first", "last", "latest", "earliest", "create"})
_FORWARD = ("ForeignKey", "OneToOneField", "ParentalKey")
_MANY = ("ManyToManyField", "GenericRelation", "ParentalManyToManyField")


@dataclass(frozen=True)
class OrmHit:
    method: str
    alternative: str
    confidence: str
    model: str | None


class DjangoORM:
    def __init__(self, index: ProjectIndex, dj: DjangoModel):
        self.index = index
        self.dj = dj
        self.models: set[str] = set()
        self.managers: set[str] = set()
        self.querysets: set[str] = set()
        mgr_bases = dj.manager_bases | dj.queryset_bases
        for cls in index.classes:
            anc = index.ancestors(cls)
            if anc & dj.model_bases:
                self.models.add(cls)
            elif anc & mgr_bases:
                self.managers.add(cls)
                if anc & dj.queryset_bases and not anc & dj.manager_bases:
                    self.querysets.add(cls)
        #: model -> attribute -> INSTANCE (forward FK/O2O) or RELATED (M2M)
        self.relations: dict[str, dict[str, str]] = {}
        #: reverse accessors declared with related_name=, on any model
        self.reverse: dict[str, str] = {}
        #: relation attributes of any project model (for instances whose model is not known)
        self.any_relation: dict[str, str] = {}
        for model in self.models:
            info = index.classes[model]
            rel: dict[str, str] = {}
            for name, attr in info.summary.attrs.items():
                v = attr.value
                if v[0] != "call" or not v[1]:
                    continue
                last = v[1].rsplit(".", 1)[-1]
                if last.endswith(_FORWARD):
                    rel[name] = INSTANCE
                    kind = INSTANCE if last.startswith("OneToOne") else RELATED
                elif last.endswith(_MANY):
                    rel[name] = RELATED
                    kind = RELATED
                else:
                    continue
                rn = v[3].get("related_name")
                if rn and rn[0] == "const" and isinstance(rn[1], str) and not rn[1].endswith("+"):
                    self.reverse[rn[1]] = kind
            self.relations[model] = rel
            for name, kind in rel.items():
                self.any_relation.setdefault(name, kind)

    @property
    def active(self) -> bool:
        return bool(self.models or self.managers)

    # ----- the walk ---------------------------------------------------------------------------
    def _start(self, segs: list[str]) -> tuple[str | None, int, str | None, bool]:
        """(state, index of the next segment, model, confident) for the leading class of a ref."""
        names: list[str] = []
        dj = self.dj
        for i, seg in enumerate(segs):
            name, markers = strip_markers(seg)
            names.append(name)
            key = ".".join(names)
            if key in self.models or key in dj.external_models or key + markers in dj.external_models:
                model = key if key in self.models else None
                if key + markers in dj.external_models and markers:
                    return MODEL, i + 1, model, True
                if markers == "":
                    return MODEL, i + 1, model, True
                if markers == "()":
                    return INSTANCE, i + 1, model, True
                return None, i + 1, None, False
            if markers == "()" and key in dj.relation_fields:
                return (RELATED if dj.relation_fields[key] == "related" else INSTANCE), i + 1, None, True
            if key in self.managers or key in dj.manager_bases or key in dj.queryset_bases:
                if markers == "()":
                    state = QUERYSET if key in self.querysets or key in dj.queryset_bases else MANAGER
                    return state, i + 1, None, True
                if markers == "" and i + 1 < len(segs) and segs[i + 1] == "as_manager()":
                    return MANAGER, i + 2, None, True
                return None, i + 1, None, False
            if markers:
                break
        return None, 0, None, False

    def _step(self, state: str, model: str | None, name: str, markers: str) -> tuple[str | None, bool]:
        """The state after `.name<markers>`, and whether it is still certain."""
        dj = self.dj
        if state == MODEL:
            if markers == "" and name in dj.manager_attrs:
                return MANAGER, True
            return None, False
        if state in (MANAGER, QUERYSET, RELATED):
            if not markers.startswith("()"):
                return None, False
            rest = markers[2:]
            if name in dj.lazy_methods:
                return (QUERYSET, True) if not rest else (None, False)
            if name in dj.blocking_methods or (name[:1] == "a" and name[1:] in dj.blocking_methods):
                base = name if name in dj.blocking_methods else name[1:]
                return (INSTANCE, True) if base in INSTANCE_RESULTS and not rest else (None, False)
            if name == "as_manager":
                return MANAGER, True
            # a custom manager/queryset method: most return a queryset
            return (QUERYSET, False) if not rest else (None, False)
        if state == INSTANCE:
            if markers:
                return None, False
            if model is not None and name in self.relations.get(model, {}):
                return self.relations[model][name], True
            if name in self.reverse:
                return self.reverse[name], True
            if model is None and name in self.any_relation:
                return self.any_relation[name], True
            if name.endswith("_set") or name in self.dj.known_related:
                return RELATED, True
            return None, False
        return None, False

    def walk(self, ref: str) -> tuple[str | None, str | None, bool, str | None]:
        """(state before the last segment, last segment, certain, model) for a callee ref."""
        segs = split_ref(ref)
        state, pos, model, sure = self._start(segs[:-1]) if len(segs) > 1 else (None, 0, None, False)
        if state is None:
            return None, None, False, None
        for seg in segs[pos:-1]:
            name, markers = strip_markers(seg)
            state, certain = self._step(state, model, name, markers)
            if state is None:
                return None, None, False, None
            sure = sure and certain
        return state, segs[-1], sure, model

    def blocking_call(self, target: str | None) -> OrmHit | None:
        """The ORM operation a call of `target` performs, when it hits the database."""
        if not target or target[0] == "$" or "." not in target:
            return None
        state, last, sure, model = self.walk(target)
        if state is None or last is None:
            return None
        name, markers = strip_markers(last)
        if markers:
            return None
        dj = self.dj
        conf = "high" if sure else "medium"
        if state in (MANAGER, QUERYSET, RELATED):
            if state == RELATED and name in dj.related_methods:
                return OrmHit(name, dj.related_methods[name], conf, model)
            if name in dj.blocking_methods:
                return OrmHit(name, dj.blocking_methods[name], conf, model)
        elif state == INSTANCE and name in dj.instance_methods:
            return OrmHit(name, dj.instance_methods[name], conf, model)
        return None

    def is_queryset(self, ref: str | None) -> tuple[bool, bool]:
        """(is an unevaluated queryset, certain) for an expression ref such as `X.filter()`."""
        if not ref or ref[0] == "$" or "." not in ref:
            return False, False
        segs = split_ref(ref)
        state, pos, model, sure = self._start(segs)
        if state is None:
            return False, False
        for seg in segs[pos:]:
            name, markers = strip_markers(seg)
            state, certain = self._step(state, model, name, markers)
            if state is None:
                return False, False
            sure = sure and certain
        return state == QUERYSET, sure
