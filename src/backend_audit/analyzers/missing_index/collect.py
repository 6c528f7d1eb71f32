"""Per-file facts for the missing-index analyzer (runs in `collect()`, cached by content).

Most files have no SQL and no SQLAlchemy expressions: every step starts with a cheap substring
test and returns nothing. What the generic summary already has (Django query call sites with
their lookups, migration operations, Alembic `op.*` calls, model classes) is not repeated here;
this module adds only what the summary cannot describe:

* SQL text (string literals that look like SQL, `.sql` files), parsed with sqlglot into schema
  facts (CREATE TABLE / INDEX, ALTER TABLE, DROP INDEX) and query facts (column usages);
* SQLAlchemy expressions (`User.email == x`, `User.name.ilike("%x%")`, `func.lower(User.email)`,
  `User.created_at.desc()`), which the summary keeps only as opaque values;
* dialect hints (Django ENGINE strings, database URLs, imported drivers).
"""

from __future__ import annotations

import ast
import bisect
import re
from typing import Any, ClassVar

from backend_audit.analyzers.missing_index import sql as sqlmod

#: SQL in a file (not just the word "select" in a docstring): literal gates first, then a regex with a
#: literal prefix on the lower-cased text (the `re` engine is slow on alternations with \\b)
_SQL_SELECT = re.compile(r"select\s[^;]{0,300}?from\s+[\w`\"]")
_SQL_UPDATE = re.compile(r"update\s+[\w`\".]+\s+set\s")
_SQL_LITERALS = ("delete from", "create index", "create unique index", "create table", "alter table",
                 "drop index", "create index concurrently")
#: SQLAlchemy / Django query methods whose expressions the summary cannot describe
_QUERY_METHODS = (".where(", ".filter(", ".filter_by(", ".order_by(", ".exclude(")
#: ...and a sign of an ORM query in the same file (a manager, a session, a select)
_ORM_SIGNS = (".objects", ".query", "select(", "session", "_set.", "Manager", "QuerySet")
#: a template that fills in identifiers: the table is unknown, nothing to learn
_IDENT_TEMPLATE = re.compile(r"\b(?:from|join|table|index|on|update|into)\s+(?:%s|%\(\w+\)s|\{)", re.IGNORECASE)
_DIALECT_WORD = re.compile(r"(\w+)(?:\+\w+)?$")
_BACKEND_WORD = re.compile(r"\w+")
_DIALECT_SCHEMES = frozenset({"postgres", "postgresql", "mysql", "mariadb", "sqlite", "oracle"})
MAX_SQL_STRINGS = 300
MAX_SQL_FILE_STATEMENTS = 3000
_REVERSE_ARGS = {"RunSQL": 1}
_SKIP_FUNCS = ("downgrade",)


class _Lines:
    """Find the line of a column inside a span of source lines (a SQL string or statement)."""

    def __init__(self, lines: list[tuple[int, str]]):
        self.lines = lines
        self.text = "\n".join(t for _, t in lines)
        self.starts: list[int] = []
        pos = 0
        for _, t in lines:
            self.starts.append(pos)
            pos += len(t) + 1

    def line_at(self, offset: int) -> int:
        lo = 0
        for i, s in enumerate(self.starts):
            if s <= offset:
                lo = i
            else:
                break
        return self.lines[lo][0] if self.lines else 0

    _CLAUSE: ClassVar[dict[str, str]] = {"where": r"\bwhere\b", "on": r"\bon\b", "order": r"\border\s+by\b", "group": r"\bgroup\s+by\b",
               "define": r"\(", "foreign key": r"\bforeign\s+key\b"}

    def locate(self, column: str, qualifier: str | None, clause: str) -> int:
        if not self.lines:
            return 0
        start = 0
        pat = self._CLAUSE.get(clause)
        if pat:
            m = re.search(pat, self.text, re.IGNORECASE)
            if m:
                start = m.end()
        col = re.escape(column)
        if qualifier:
            rx = rf"\b{re.escape(qualifier)}[`\"]?\s*\.\s*[`\"]?{col}\b"
        else:
            rx = r"(?<![\w.])[`\"]?" + col + r"\b"
        m = re.compile(rx, re.IGNORECASE).search(self.text, start)
        if m is None:
            return 0
        return self.line_at(m.start())


def sql_file_facts(text: str) -> dict[str, Any] | None:
    """Facts of a `.sql` file: every statement's schema or query facts with its line."""
    if not text.strip():
        return None
    out: list[dict[str, Any]] = []
    all_lines = text.split("\n")
    for n, (offset, stmt) in enumerate(sqlmod.split_statements(text)):
        if n >= MAX_SQL_FILE_STATEMENTS:
            break
        if not sqlmod.starts_like_query_or_ddl(stmt):
            continue  # INSERT / COPY / SET / psql commands: nothing about indexes, and dumps have thousands
        first = text.count("\n", 0, offset) + 1
        span = [(first + i, s) for i, s in enumerate(stmt.split("\n"))]
        loc = _Lines(span)
        if len(stmt) > sqlmod.MAX_SQL_CHARS:
            continue
        for fact in sqlmod.facts_of_statement(stmt, loc.locate, first):
            fact["origin"] = "sql-file"
            out.append(fact)
    del all_lines
    return {"sql": out} if out else None


def python_facts(tree: ast.Module, text: str, module: Any, lines: Any) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    hints = _dialect_hints(text, module)
    if hints:
        out["dialects"] = hints
    sql_lines = _sql_lines(text)
    if sql_lines:
        sql_facts = _sql_strings(tree, lines, sql_lines)
        if sql_facts:
            out["sql"] = sql_facts
    if any(m in text for m in _QUERY_METHODS) and any(m in text for m in _ORM_SIGNS):
        sa_lines = sorted({n for m in _QUERY_METHODS for n in _literal_lines(text, m)})
        ex = _SAExtractor(module)
        sa = ex.run(tree, sa_lines)
        if sa:
            out["sa"] = sa
        if ex.method_lines:
            out["method_lines"] = ex.method_lines
    return out or None


def _literal_lines(text: str, needle: str) -> list[int]:
    out: list[int] = []
    line, pos = 1, 0
    i = text.find(needle)
    while i >= 0:
        line += text.count("\n", pos, i)
        pos = i
        out.append(line)
        i = text.find(needle, i + len(needle))
    return out


def _sql_lines(text: str) -> list[int]:
    """Lines where SQL seems to start; [] for the (many) files without SQL."""
    low = text.lower()
    found: set[int] = set()
    if "select" in low and "from" in low:
        found.update(_match_lines(_SQL_SELECT, low))
    if "update" in low and " set " in low:
        found.update(_match_lines(_SQL_UPDATE, low))
    for lit in _SQL_LITERALS:
        if lit in low:
            found.update(_literal_lines(low, lit))
    return sorted(found)


def _dialect_hints(text: str, module: Any) -> list[str]:
    found: list[str] = []
    if "django.db.backends." in text:
        i = text.find("django.db.backends.")
        while i >= 0:
            m = _BACKEND_WORD.match(text, i + len("django.db.backends."))
            if m and m.group(0).lower() not in found:
                found.append(m.group(0).lower())
            i = text.find("django.db.backends.", i + 1)
    if "://" in text:
        i = text.find("://")
        while i >= 0:
            m = _DIALECT_WORD.search(text, max(0, i - 40), i)
            name = m.group(1).lower() if m else ""
            if name in _DIALECT_SCHEMES and name not in found:
                found.append(name)
            i = text.find("://", i + 3)
    if module is not None:
        for ref in module.imports.values():
            head = ref.split(".")[0]
            if head in _DRIVER_HEADS and f"driver:{head}" not in found:
                found.append(f"driver:{head}")
    return found


_DRIVER_HEADS = frozenset({"psycopg2", "psycopg", "asyncpg", "pg8000", "pymysql", "MySQLdb", "aiomysql",
                           "asyncmy", "mysql", "sqlite3", "aiosqlite"})


def _match_lines(pattern: re.Pattern, text: str) -> list[int]:
    """The (sorted, distinct) line numbers where `pattern` matches."""
    out: list[int] = []
    line, pos = 1, 0
    for m in pattern.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if not out or out[-1] != line:
            out.append(line)
    return out


def _spans(node: ast.AST, wanted: list[int]) -> bool:
    """Does the node's line span contain one of the wanted lines? (nodes without a position: yes)"""
    start = getattr(node, "lineno", None)
    if start is None:
        return True
    end = getattr(node, "end_lineno", None) or start
    i = bisect.bisect_left(wanted, start)
    return i < len(wanted) and wanted[i] <= end


def _pruned_walk(tree: ast.AST, wanted: list[int]):
    """Like ast.walk, but never descends into a statement or expression far from the wanted lines."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if _spans(child, wanted):
                stack.append(child)


def _sql_strings(tree: ast.Module, lines: Any, wanted: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    parsed = 0
    for node, in_reverse in _walk_strings(tree, wanted):
        value = _string_value(node)
        if value is None or not sqlmod.looks_like_sql(value) or _IDENT_TEMPLATE.search(value):
            continue
        parsed += 1
        if parsed > MAX_SQL_STRINGS:
            break
        start, end = node.lineno, node.end_lineno or node.lineno
        span = [(n, lines.line(n)) for n in range(start, end + 1)]
        loc = _Lines(span)
        for _offset, stmt in sqlmod.split_statements(value):
            for fact in sqlmod.facts_of_statement(stmt, loc.locate, start):
                fact["origin"] = "python"
                fact["reverse"] = in_reverse
                fact["string_line"] = start
                out.append(fact)
    return out


def _string_value(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            else:
                parts.append("{p}")
        return "".join(parts)
    return None


def _walk_strings(tree: ast.AST, wanted: list[int]):
    """String literals with a flag: inside a downgrade()/reverse_sql (undoing, not the schema)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, rev = stack.pop()
        if not _spans(node, wanted):
            continue
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            yield node, rev
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare string: documentation, not a query
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in _SKIP_FUNCS:
            rev = True
        if isinstance(node, ast.Call):
            fname = node.func.attr if isinstance(node.func, ast.Attribute) else \
                node.func.id if isinstance(node.func, ast.Name) else ""
            if fname in _REVERSE_ARGS:
                stack.append((node.func, rev))
                for i, a in enumerate(node.args):
                    stack.append((a, rev or i >= _REVERSE_ARGS[fname]))
                for k in node.keywords:
                    stack.append((k.value, rev or k.arg == "reverse_sql"))
                continue
        for child in ast.iter_child_nodes(node):
            stack.append((child, rev))


# ----- SQLAlchemy expressions ---------------------------------------------------------------
_SA_METHODS = {"where": "filter", "filter": "filter", "filter_by": "filter_by", "order_by": "order",
               "join": "join", "outerjoin": "join", "having": "filter", "group_by": "group"}
_CMP = {ast.Eq: "eq", ast.Gt: "range", ast.GtE: "range", ast.Lt: "range", ast.LtE: "range", ast.In: "eq"}
_COL_METHODS = {"in_": "eq", "between": "range", "startswith": "prefix", "like": "like", "ilike": "ilike",
                "contains": "infix", "icontains": "infix", "endswith": "infix", "iendswith": "infix",
                "istartswith": "ilike", "is_": "isnull", "isnot": "isnull", "is_not": "isnull",
                "desc": "order", "asc": "order", "notin_": None, "not_in": None, "notlike": None, "not_like": None}


class _SAExtractor:
    """Column conditions and orderings in SQLAlchemy query chains, with refs for the index."""

    def __init__(self, module: Any):
        self.imports = module.imports if module is not None else {}
        self.module_names = set(module.classes) | set(module.assigns) if module is not None else set()
        self.out: list[dict[str, Any]] = []
        self.method_lines: dict[str, int] = {}
        self.in_or = 0  # the OR group of the conditions being read (0: not inside an OR)
        self.groups = 0
        self.select_names = {name for name, ref in self.imports.items()
                             if ref in ("sqlalchemy.select", "sqlalchemy.future.select", "sqlmodel.select",
                                        "sqlalchemy.sql.select")}

    def ref(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            if node.id in self.imports:
                return self.imports[node.id]
            if node.id in self.module_names:
                return f"@{node.id}"
            return f"${node.id}"
        if isinstance(node, ast.Attribute):
            base = self.ref(node.value)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call):
            base = self.ref(node.func)
            return None if base is None else f"{base}()"
        return None

    def run(self, tree: ast.Module, wanted: list[int]) -> list[dict[str, Any]]:
        chains: dict[tuple[int, int], dict[str, Any]] = {}
        roots: list[ast.Call] = []
        for node in _pruned_walk(tree, wanted):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name):
                if node.args and node.func.id in self.select_names:
                    roots.append(node)
                continue
            if not isinstance(node.func, ast.Attribute):
                continue
            if node.func.end_lineno and node.func.end_lineno != node.lineno:
                # `Book.objects\n    .filter(...)`: the line of the method, where a reviewer points
                self.method_lines[f"{node.lineno}:{node.col_offset}:{node.func.attr}"] = node.func.end_lineno
            kind = _SA_METHODS.get(node.func.attr)
            if kind is None and node.func.attr not in ("query", "select"):
                continue
            key = (node.lineno, node.col_offset)
            chain = chains.get(key)
            if chain is None:
                chain = chains[key] = {"line": node.lineno, "col": node.col_offset, "end_line": node.end_lineno,
                                       "conds": [], "entities": [], "filter_by": [], "calls": 0,
                                       "complete": self.complete_root(node)}
            chain["calls"] += 1
            if kind == "filter":
                for a in node.args:
                    self.condition(a, chain)
            elif kind == "filter_by":
                for k in node.keywords:
                    if k.arg:
                        chain["filter_by"].append((k.arg, node.lineno))
                base = node.func.value
                r = self.ref(base.value) if isinstance(base, ast.Attribute) and base.attr == "query" else None
                if r:
                    chain["entities"].append(r)
            elif kind == "order":
                for a in node.args:
                    self.ordering(a, chain)
            elif kind == "join":
                for a in node.args[1:]:
                    self.condition(a, chain, join=True)
            if node.func.attr in ("query", "select"):  # session.query(User), db.select(User)
                for a in node.args:
                    r = self.ref(a)
                    if r:
                        chain["entities"].append(r)
        # `select(User)` at the root of a chain
        for node in roots:
            chain = chains.get((node.lineno, node.col_offset))
            if chain is not None:
                chain["entities"].extend(r for r in (self.ref(a) for a in node.args) if r)
        return [c for c in chains.values() if c["conds"] or c["filter_by"] or c.get("order_names")]

    def complete_root(self, node: ast.AST) -> bool:
        """Does the chain start the query itself (`select(...)`, `session.query(...)`, `User.query`,
        `users.select()`)? A chain on a local variable (`stmt = stmt.order_by(...)`) continues a query
        built elsewhere, whose other conditions we do not see."""
        cur: ast.AST = node
        while True:
            if isinstance(cur, ast.Call):
                f = cur.func
                if isinstance(f, ast.Attribute) and f.attr in ("query", "select"):
                    return True
                if isinstance(f, ast.Name):
                    return f.id in self.select_names
                cur = f
            elif isinstance(cur, ast.Attribute):
                if cur.attr == "query" and isinstance(cur.value, ast.Name):
                    return True  # Flask-SQLAlchemy `User.query`
                cur = cur.value
            elif isinstance(cur, ast.Subscript):
                cur = cur.value
            elif isinstance(cur, ast.Name):
                return cur.id in self.imports or cur.id in self.module_names
            else:
                return False

    def column(self, node: ast.AST) -> tuple[str, str] | None:
        """`User.email` -> (ref of User, "email"); `users.c.email` -> (ref of users, "email")."""
        if isinstance(node, ast.Attribute):
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr in ("c", "columns"):
                owner = owner.value
            r = self.ref(owner)
            if r and not r.startswith("$"):
                return r, node.attr
            if r and isinstance(owner, ast.Name) and owner.id[:1].isupper():
                return r, node.attr
        return None

    def add(self, chain: dict[str, Any], node: ast.AST, usage: str, col: tuple[str, str], join: bool = False) -> None:
        chain["conds"].append({"owner": col[0], "attr": col[1], "usage": "join" if join and usage == "eq" else usage,
                               "line": node.lineno, "or": self.in_or})

    def or_group(self, operands: list[ast.AST], chain: dict[str, Any], join: bool) -> None:
        """OR: each operand is a group of conditions that needs its own index (a bitmap OR)."""
        saved = self.in_or
        for operand in operands:
            if isinstance(operand, ast.BinOp) and isinstance(operand.op, ast.BitOr):
                self.or_group([operand.left, operand.right], chain, join)
                continue
            self.groups += 1
            self.in_or = self.groups
            self.condition(operand, chain, join)
        self.in_or = saved

    def condition(self, node: ast.AST, chain: dict[str, Any], join: bool = False) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self.or_group([node.left, node.right], chain, join)
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
            self.condition(node.left, chain, join)
            self.condition(node.right, chain, join)
            return
        if isinstance(node, ast.Call):
            fref = self.ref(node.func) or ""
            last = fref.rsplit(".", 1)[-1]
            if last == "or_":
                self.or_group(list(node.args), chain, join)
                return
            if last == "and_":
                for a in node.args:
                    self.condition(a, chain, join)
                return
            if last in ("not_",):
                return
            if isinstance(node.func, ast.Attribute) and node.func.attr in _COL_METHODS:
                usage = _COL_METHODS[node.func.attr]
                col = self.column(node.func.value)
                if col is None or usage is None:
                    return
                if usage in ("like", "ilike") and node.func.attr in ("like", "ilike"):
                    usage = _like_arg(node.args[0] if node.args else None, node.func.attr)
                    if usage is None:
                        return
                self.add(chain, node, usage, col, join)
                return
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.condition(v, chain, join)
            return
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = type(node.ops[0])
            usage = _CMP.get(op)
            if usage is None:
                return
            left, right = node.left, node.comparators[0]
            lcol, rcol = self.column(left), self.column(right)
            if lcol and rcol:
                if op is ast.Eq:
                    self.add(chain, node, "join", lcol)
                    self.add(chain, node, "join", rcol)
                return
            fn = _func_col(left, self)
            if fn is not None:
                self.add(chain, node, f"func:{fn[0]}", fn[1], join)
                return
            if lcol:
                self.add(chain, node, usage, lcol, join)
            elif rcol and usage == "eq":
                self.add(chain, node, usage, rcol, join)

    def ordering(self, node: ast.AST, chain: dict[str, Any]) -> None:
        target = node
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("desc", "asc", "nulls_last", "nulls_first"):
                target = node.func.value
                if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and target.func.attr in ("desc", "asc"):
                    target = target.func.value
            elif (self.ref(node.func) or "").rsplit(".", 1)[-1] in ("desc", "asc") and node.args:
                target = node.args[0]
        col = self.column(target)
        if col:
            chain["conds"].append({"owner": col[0], "attr": col[1], "usage": "order", "line": node.lineno})
        elif isinstance(target, ast.Constant) and isinstance(target.value, str):
            chain.setdefault("order_names", []).append((target.value.lstrip("-").split(" ")[0], node.lineno))


def _func_col(node: ast.AST, ex: _SAExtractor) -> tuple[str, tuple[str, str]] | None:
    """`func.lower(User.email)` -> ("lower", (User ref, "email"))."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) == 1:
        fref = ex.ref(node.func) or ""
        if ".func." in f".{fref}" or fref.startswith("sqlalchemy.func"):
            col = ex.column(node.args[0])
            if col:
                return node.func.attr.lower(), col
    return None


def _like_arg(node: ast.AST | None, method: str) -> str | None:
    """The usage of a LIKE pattern argument: 'infix' for a leading wildcard, else prefix/ilike/None."""
    first: ast.AST | None = node
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        first = node.left
        while isinstance(first, ast.BinOp):
            first = first.left
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        if first.value.startswith(("%", "_")):
            return "infix"
        return "prefix" if method == "like" else "ilike"
    return None
