"""The schema model: tables, columns, primary keys, foreign keys and indexes, and what serves what.

Built by `builders.py` from the ORM graph, migrations and SQL DDL. An index is a tuple of keys:
column names, or expression keys such as `lower(email)`. Whether an index *serves* a column usage
follows the database's real rules:

* a B-tree index serves equality, range, prefix LIKE and ORDER BY on its leading column, and on a
  later column only when the query pins every column before it with equality
  (an index on (a, b) serves `a = ?` and `a = ? AND b = ?`, never `b = ?` alone);
* an expression index on `lower(email)` serves `lower(email) = ?`, not `email = ?`;
* a partial index serves a query only when the query also constrains its condition columns;
* only a trigram GIN/GiST index serves `LIKE '%x%'` / `icontains`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SARGABLE = ("eq", "range", "prefix", "join")


@dataclass
class Index:
    table: str
    keys: tuple[str, ...]
    unique: bool = False
    primary: bool = False
    #: partial index: the columns its WHERE clause mentions (None: a full index)
    condition_columns: frozenset[str] | None = None
    condition: str = ""
    method: str = "btree"
    trigram: bool = False
    name: str | None = None
    path: str = ""
    line: int = 0
    #: django-model, django-implicit, sqlalchemy, alembic, django-migration, sql, catalog
    source: str = ""
    implicit: bool = False  # created by the framework (Django FK / unique / pk), not written as an index
    declared: str = ""  # how it was written, for messages ("db_index=True", "Index(fields=[...])")
    owner: str = ""  # the model that declares it (two models mapping one table do not duplicate each other)

    @property
    def family(self) -> str:
        """Where the index is declared: a model and its migration describe the same index."""
        return "ddl" if self.source == "sql" else "model"

    def signature(self) -> tuple:
        return (self.keys, self.condition_columns, self.condition.lower(), self.method, self.trigram)


@dataclass
class Column:
    name: str
    field: str | None = None
    type: str = "other"  # text, bool, json, datetime, number, fk, other
    path: str = ""
    line: int = 0


@dataclass
class ForeignKeyDef:
    table: str
    columns: tuple[str, ...]
    ref_table: str
    path: str
    line: int
    source: str  # sqlalchemy, alembic, sql, django
    field: str | None = None
    model: str | None = None


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: list[Index] = field(default_factory=list)
    fks: list[ForeignKeyDef] = field(default_factory=list)
    pk: tuple[str, ...] = ()
    model: str | None = None  # qualified name of the ORM model
    framework: str = ""  # django, sqlalchemy, alembic, sql
    path: str = ""
    line: int = 0
    external: bool = False  # from the catalog of well-known third-party tables: never reported

    def add_index(self, ix: Index) -> Index | None:
        """Add an index unless it is already known (same name, or the same index seen from another source)."""
        for old in self.indexes:
            if ix.name and old.name and ix.name.lower() == old.name.lower():
                return None
            if old.signature() == ix.signature() and old.unique == ix.unique and (
                    old.family != ix.family or ix.source in ("alembic", "django-migration")
                    or old.source in ("alembic", "django-migration")):
                return None
        self.indexes.append(ix)
        return ix

    def drop_index(self, name: str) -> bool:
        before = len(self.indexes)
        self.indexes = [ix for ix in self.indexes if not (ix.name and ix.name.lower() == name.lower())]
        return len(self.indexes) != before

    def add_column(self, col: Column) -> None:
        if col.name not in self.columns:
            self.columns[col.name] = col


class Schema:
    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}

    def table(self, name: str) -> Table | None:
        return self.tables.get(name.lower().strip('"`')) if name else None

    def ensure(self, name: str, **kw) -> Table:
        key = name.lower().strip('"`')
        t = self.tables.get(key)
        if t is None:
            t = Table(key, **kw)
            self.tables[key] = t
        return t

    def drop_index(self, name: str) -> None:
        for t in self.tables.values():
            if t.drop_index(name):
                return


# ----- what serves what -------------------------------------------------------------------------
def index_serves(ix: Index, key: str, usage: str, eq_cols: set[str], query_cols: set[str]) -> bool:
    """Can `ix` serve the usage of `key` (a column or `lower(col)`) in a query that pins `eq_cols`?"""
    if ix.condition_columns is not None and not ix.condition_columns <= query_cols:
        return False
    if "?" in ix.keys and key not in ix.keys:
        return False
    if usage == "infix":
        return ix.trigram and key in ix.keys
    if ix.method in ("gin", "gist"):
        return ix.trigram and key in ix.keys and usage in ("eq", "prefix", "ilike", "infix")
    if ix.method == "brin":
        return usage == "range" and ix.keys[:1] == (key,)
    if ix.method == "hash":
        return usage in ("eq", "join") and ix.keys[:1] == (key,)
    if key not in ix.keys:
        return False
    pos = ix.keys.index(key)
    return all(k in eq_cols for k in ix.keys[:pos])


def serving_index(table: Table, key: str, usage: str, eq_cols: set[str], query_cols: set[str]) -> Index | None:
    for ix in table.indexes:
        if index_serves(ix, key, usage, eq_cols, query_cols):
            return ix
    return None


def non_leading_index(table: Table, key: str) -> Index | None:
    """A B-tree index that has `key`, but not as its leading column (for BA207)."""
    for ix in table.indexes:
        if ix.method in ("btree", "") and key in ix.keys and ix.keys[0] != key and ix.condition_columns is None:
            return ix
    return None


def unique_covers(table: Table, cols: set[str]) -> bool:
    """Is some unique index (or the primary key) made only of columns in `cols`?"""
    if table.pk and set(table.pk) <= cols:
        return True
    for ix in table.indexes:
        if (ix.unique or ix.primary) and set(ix.keys) <= cols and (
                ix.condition_columns is None or ix.condition_columns <= cols):
            return True
    return False


def fk_indexed(table: Table, cols: tuple[str, ...]) -> bool:
    """Is there an index whose leading keys are exactly the foreign key's columns (any order)?"""
    n = len(cols)
    for ix in table.indexes:
        if ix.method not in ("btree", "", "hash") or ix.condition_columns is not None:
            continue
        if set(ix.keys[:n]) == set(cols):
            return True
    return bool(table.pk) and set(table.pk[:n]) == set(cols)
