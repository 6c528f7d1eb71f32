"""sqlglot helpers: SQL text -> schema facts (DDL) and query facts (which columns a query uses how).

Everything here runs inside `collect()` (per file, cached), so warm scans never import sqlglot;
the facts it returns are plain dicts and tuples. sqlglot is imported lazily by `parse_statements`.

Query facts record, for each column a query filters, joins, orders or groups on, the table it
belongs to (aliases resolved; an unqualified column in a multi-table scope keeps its candidate
tables so the analyzer can pick the one whose schema has that column) and a *usage*:

    eq, range, prefix   served by a B-tree index whose leading columns match
    infix               LIKE '%x%' / ILIKE: only a trigram (GIN/GiST) index serves it
    func:lower, ...     a function wrapped around the column: only an expression index serves it
    join                the column of an equality join condition
    order, group        ORDER BY / GROUP BY
    isnull              IS [NOT] NULL (recorded, never flagged on its own)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MAX_SQL_CHARS = 20_000

_SQL_START = re.compile(r"^\s*(?:\(\s*)?(select|with|update|delete|create|alter|drop|insert)\b", re.IGNORECASE)
_SQL_BODY = re.compile(r"\b(from|where|index|table|join|set|into)\b", re.IGNORECASE)


def looks_like_sql(text: str) -> bool:
    """A cheap test before handing a string to sqlglot."""
    if len(text) < 12 or len(text) > MAX_SQL_CHARS:
        return False
    m = _SQL_START.match(text)
    return bool(m) and bool(_SQL_BODY.search(text, m.end()))


_QUERY_OR_DDL = re.compile(r"^\s*\(?\s*(select|with|update|delete|create|alter|drop)\b", re.IGNORECASE)


def starts_like_query_or_ddl(stmt: str) -> bool:
    return bool(_QUERY_OR_DDL.match(stmt))


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split SQL text on `;` outside quotes and comments: [(start offset, statement text)]."""
    out: list[tuple[int, str]] = []
    i, n, start = 0, len(text), 0
    quote: str | None = None
    while i < n:
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
        elif ch == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif ch == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        elif ch == "$" and text.startswith("$$", i):
            j = text.find("$$", i + 2)
            i = n if j < 0 else j + 2
            continue
        elif ch == ";":
            out.append((start, text[start:i]))
            start = i + 1
        i += 1
    if text[start:].strip():
        out.append((start, text[start:]))
    return [(s + _leading_noise(t), t[_leading_noise(t):]) for s, t in out if _strip_comments(t).strip()]


def _leading_noise(stmt: str) -> int:
    """Offset of the first character of a statement that is not whitespace or a comment."""
    i = 0
    while i < len(stmt):
        if stmt[i].isspace():
            i += 1
        elif stmt.startswith("--", i):
            j = stmt.find("\n", i)
            i = len(stmt) if j < 0 else j + 1
        elif stmt.startswith("/*", i):
            j = stmt.find("*/", i)
            i = len(stmt) if j < 0 else j + 2
        else:
            break
    return i


def _strip_comments(stmt: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", stmt, flags=re.DOTALL)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|\{[^{}]*\}")


def _normalise(stmt: str) -> str:
    """Python-side placeholders sqlglot may not know (`%s`, `%(x)s`, `{x}`) become `?`-style."""
    return _PLACEHOLDER.sub(lambda m: f":{m.group(1)}" if m.group(1) else ":p", stmt)


def parse_statement(stmt: str) -> Any | None:
    """The sqlglot expression of one statement, trying the dialects in turn, else None."""
    import logging

    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ErrorLevel

    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)  # unsupported syntax is our fallback, not noise
    text = _normalise(stmt)
    # backticks are MySQL's; everything else parses with the PostgreSQL grammar or not at all
    dialects = ("mysql",) if "`" in text else ("postgres",)
    for dialect in dialects:
        try:
            expr = sqlglot.parse_one(text, read=dialect, error_level=ErrorLevel.RAISE)
        except Exception:
            continue
        if expr is not None and not isinstance(expr, exp.Command):
            return expr
    return None


# ---------------------------------------------------------------------------------------------
# facts

Locator = Callable[[str, "str | None", str], int]


def facts_of_statement(stmt: str, locate: Locator, line: int) -> list[dict[str, Any]]:
    """Schema or query facts of one statement. `locate(column, qualifier, clause)` -> line."""
    expr = parse_statement(stmt)
    if expr is None:
        return []
    try:
        from sqlglot import exp

        if isinstance(expr, exp.Create):
            return _create_facts(expr, stmt, locate, line)
        if isinstance(expr, exp.Alter):
            return _alter_facts(expr, locate, line)
        if isinstance(expr, exp.Drop):
            kind = str(expr.args.get("kind") or "").upper()
            if kind == "INDEX":
                return [{"kind": "drop_index", "name": t.name.lower(), "line": line}
                        for t in expr.args.get("tables") or [] if t.name]
            if kind == "TABLE":
                return [{"kind": "drop_table", "name": t.name.lower(), "line": line}
                        for t in expr.args.get("tables") or [] if t.name]
            return []
        if isinstance(expr, (exp.Select, exp.Update, exp.Delete, exp.Union)):
            q = _query_facts(expr, locate, line)
            return [q] if q["usages"] else []
    except Exception:  # an odd tree from a valid parse: never let it stop the scan
        return []
    return []


def _ident(node: Any) -> str:
    from sqlglot import exp

    if node is None:
        return ""
    if isinstance(node, exp.Identifier):
        return node.name.lower()
    if isinstance(node, (exp.Column, exp.Table)):
        return node.name.lower()
    if isinstance(node, exp.Ordered):
        return _ident(node.this)
    return getattr(node, "name", "").lower() if hasattr(node, "name") else ""


def _key_of(node: Any) -> str | None:
    """An index key: a column name, or `lower(col)` for an expression, else None."""
    from sqlglot import exp

    if isinstance(node, exp.Ordered):
        node = node.this
    if isinstance(node, exp.Opclass):
        node = node.this
    if isinstance(node, (exp.Column, exp.Identifier)):
        return node.name.lower()
    if isinstance(node, exp.Paren):
        return _key_of(node.this)
    if isinstance(node, exp.Func):
        cols = list(node.find_all(exp.Column))
        if len(cols) == 1:
            return f"{func_name(node)}({cols[0].name.lower()})"
    return None


def _opclass(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Ordered):
        node = node.this
    if isinstance(node, exp.Opclass):
        return node.expression.sql().lower() if node.expression is not None else ""
    return ""


def _columns_in(node: Any) -> list[str]:
    from sqlglot import exp

    if node is None:
        return []
    return sorted({c.name.lower() for c in node.find_all(exp.Column)})


def _index_fact(table: str, name: str, keys: list, line: int, *, unique: bool = False, method: str = "btree",
                where: Any = None, opclasses: list[str] | None = None) -> dict[str, Any]:
    ops = [o for o in (opclasses or []) if o]
    return {"kind": "create_index", "table": table, "name": name, "keys": keys, "unique": unique,
            "method": (method or "btree").lower(), "trigram": any("trgm" in o for o in ops),
            "where_cols": _columns_in(where) if where is not None else None,
            "where": where.sql() if where is not None else "", "line": line}


def _create_facts(expr: Any, stmt: str, locate: Locator, line: int) -> list[dict[str, Any]]:
    from sqlglot import exp

    kind = str(expr.args.get("kind") or "").upper()
    if kind == "INDEX":
        index = expr.this
        if not isinstance(index, exp.Index):
            return []
        table = index.args.get("table")
        params = index.args.get("params")
        cols = (params.args.get("columns") if params is not None else None) or index.args.get("columns") or []
        keys = [_key_of(c) for c in cols]
        if not keys or any(k is None for k in keys):
            keys = [k or "?" for k in keys]
        using = params.args.get("using") if params is not None else None
        where = params.args.get("where") if params is not None else None
        if isinstance(where, exp.Where):
            where = where.this
        return [_index_fact(_ident(table), _ident(index.this), keys, line, unique=bool(expr.args.get("unique")),
                            method=using.name if using is not None else "btree", where=where,
                            opclasses=[_opclass(c) for c in cols])]
    if kind != "TABLE":
        return []
    schema = expr.this
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        return []
    table = _ident(schema.this)
    fact: dict[str, Any] = {"kind": "create_table", "table": table, "line": line, "columns": [],
                            "pk": [], "uniques": [], "fks": [], "indexes": []}
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            _column_def(item, fact, locate, line)
        else:
            _table_constraint(item, fact, table, locate, line)
    return [fact]


def _column_def(item: Any, fact: dict[str, Any], locate: Locator, line: int) -> None:
    from sqlglot import exp

    name = item.name.lower()
    col_line = locate(name, None, "define") or line
    dtype = item.args.get("kind")
    fact["columns"].append({"name": name, "line": col_line, "type": dtype.sql().lower() if dtype is not None else ""})
    for c in item.args.get("constraints") or []:
        k = c.args.get("kind") if isinstance(c, exp.ColumnConstraint) else c
        if isinstance(k, exp.PrimaryKeyColumnConstraint):
            fact["pk"] = [name]
        elif isinstance(k, exp.UniqueColumnConstraint):
            fact["uniques"].append([name])
        elif isinstance(k, exp.Reference):
            target = k.this.this if isinstance(k.this, exp.Schema) else k.this
            fact["fks"].append({"columns": [name], "ref_table": _ident(target), "line": col_line})


def _table_constraint(item: Any, fact: dict[str, Any], table: str, locate: Locator, line: int) -> None:
    from sqlglot import exp

    if isinstance(item, exp.Constraint):
        for sub in item.expressions:
            _table_constraint(sub, fact, table, locate, line)
        return
    if isinstance(item, exp.PrimaryKey):
        fact["pk"] = [_ident(e) for e in item.expressions]
    elif isinstance(item, exp.UniqueColumnConstraint):
        sch = item.this
        cols = [_ident(e) for e in (sch.expressions if isinstance(sch, exp.Schema) else [])]
        if cols:
            fact["uniques"].append(cols)
    elif isinstance(item, exp.ForeignKey):
        cols = [_ident(e) for e in item.expressions]
        ref = item.args.get("reference")
        target = ref.this.this if ref is not None and isinstance(ref.this, exp.Schema) else (ref.this if ref else None)
        if cols:
            fk_line = locate(cols[0], None, "foreign key") or line
            fact["fks"].append({"columns": cols, "ref_table": _ident(target), "line": fk_line})
    elif isinstance(item, exp.IndexColumnConstraint):
        keys = [_key_of(e) or "?" for e in item.expressions]
        kind = str(item.args.get("kind") or "").upper()
        if keys and kind not in ("FULLTEXT", "SPATIAL"):
            fact["indexes"].append(_index_fact(table, _ident(item.this), keys, line))


def _alter_facts(expr: Any, locate: Locator, line: int) -> list[dict[str, Any]]:
    from sqlglot import exp

    if not isinstance(expr.this, exp.Table):
        return []
    table = _ident(expr.this)
    fact: dict[str, Any] = {"kind": "alter_table", "table": table, "line": line, "columns": [],
                            "pk": [], "uniques": [], "fks": [], "indexes": []}
    for action in expr.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            _column_def(action, fact, locate, line)
        elif isinstance(action, exp.AddConstraint):
            for c in action.expressions:
                _table_constraint(c, fact, table, locate, line)
        elif isinstance(action, (exp.Constraint, exp.ForeignKey, exp.PrimaryKey, exp.UniqueColumnConstraint)):
            _table_constraint(action, fact, table, locate, line)
    return [fact]


# ----- queries ---------------------------------------------------------------------------------
_COMPARE_USAGE = {"EQ": "eq", "NullSafeEQ": "eq", "GT": "range", "GTE": "range", "LT": "range", "LTE": "range",
                  "In": "eq", "Between": "range"}


def _scope_of(node: Any) -> Any:
    from sqlglot import exp

    p = node.parent
    while p is not None and not isinstance(p, (exp.Select, exp.Update, exp.Delete)):
        p = p.parent
    return p


def _direct_tables(scope: Any, aliases: dict[str, str | None]) -> list[str]:
    from sqlglot import exp

    if scope is None:
        return []
    out: list[str] = []
    nodes = []
    if isinstance(scope, (exp.Update, exp.Delete)) and isinstance(scope.this, exp.Table):
        nodes.append(scope.this)
    frm = scope.args.get("from_") or scope.args.get("from")
    if frm is not None:
        nodes.append(frm.this)
    for j in scope.args.get("joins") or []:
        nodes.append(j.this)
    for n in nodes:
        if isinstance(n, exp.Table):
            t = aliases.get(n.alias_or_name.lower())
            if t:
                out.append(t)
    return out


#: node class -> the positions in `_query_parts`' kinds of the classes it is a subclass of
_PART_INDEXES: dict[type, tuple[int, ...]] = {}


def _query_parts(expr: Any) -> list[list[Any]]:
    """[CTEs, tables, subqueries, WHEREs, joins, ORDER BYs, GROUP BYs] of a statement, each as
    `expr.find_all(kind)` lists it (breadth first), from one walk instead of seven."""
    from sqlglot import exp

    kinds = (exp.CTE, exp.Table, exp.Subquery, exp.Where, exp.Join, exp.Order, exp.Group)
    parts: list[list[Any]] = [[] for _ in kinds]
    for node in expr.walk():
        cls = type(node)
        indexes = _PART_INDEXES.get(cls)
        if indexes is None:
            indexes = _PART_INDEXES[cls] = tuple(i for i, kind in enumerate(kinds) if issubclass(cls, kind))
        for i in indexes:
            parts[i].append(node)
    return parts


def _query_facts(expr: Any, locate: Locator, line: int) -> dict[str, Any]:
    from sqlglot import exp

    # the tree is only read below, so collecting every kind up front sees what find_all would
    cte_nodes, table_nodes, subqueries, wheres, joins, orders, group_bys = _query_parts(expr)
    ctes = {c.alias_or_name.lower() for c in cte_nodes}
    aliases: dict[str, str | None] = {}
    tables: list[str] = []
    for t in table_nodes:
        name = t.name.lower()
        if not name:
            continue
        real = None if name in ctes or t.args.get("db") and str(t.args["db"]).lower() in ("information_schema", "pg_catalog") else name
        aliases[t.alias_or_name.lower()] = real
        aliases.setdefault(name, real)
        if real and real not in tables:
            tables.append(real)
    for sub in subqueries:
        if sub.alias:
            aliases[sub.alias.lower()] = None
    usages: list[dict[str, Any]] = []

    def add(col: Any, usage: str, clause: str, fn: str | None = None, in_or: int = 0) -> None:
        qual = col.table.lower() if col.table else None
        if qual is not None:
            if qual not in aliases or aliases[qual] is None:
                return
            cands = [aliases[qual]]
        else:
            cands = _direct_tables(_scope_of(col), aliases)
        if not cands:
            return
        name = col.name.lower()
        usages.append({"tables": cands, "column": name, "usage": f"func:{fn}" if fn else usage,
                       "line": locate(name, col.table or None, clause) or line, "or": in_or})

    groups = [0]

    def or_operands(node: Any) -> list[Any]:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Or):
            return or_operands(node.this) + or_operands(node.expression)
        return [node]

    def predicate(node: Any, clause: str, in_or: int = 0) -> None:
        if isinstance(node, exp.Or):
            # OR: each operand is a group of ANDed conditions that needs its own index (a bitmap OR)
            for operand in or_operands(node):
                groups[0] += 1
                predicate(operand, clause, groups[0])
            return
        if isinstance(node, exp.And):
            predicate(node.this, clause, in_or)
            predicate(node.expression, clause, in_or)
            return
        if isinstance(node, exp.Paren):
            predicate(node.this, clause, in_or)
            return
        if isinstance(node, exp.Not):
            return  # negations rarely use an index: never flag them
        name = type(node).__name__
        if name in _COMPARE_USAGE or isinstance(node, (exp.Like, exp.ILike, exp.Is)):
            left, right = node.this, node.args.get("expression")
            if isinstance(node, exp.Is):
                if isinstance(left, exp.Column):
                    add(left, "isnull", clause, None, in_or)
                return
            if isinstance(node, (exp.Like, exp.ILike)):
                pattern = _like_kind(right)
                target, fn = _column_side(left)
                if target is None:
                    return
                if pattern == "infix":
                    add(target, "infix", clause, None, in_or)
                elif pattern == "prefix" and not isinstance(node, exp.ILike) and not fn:
                    add(target, "prefix", clause, None, in_or)
                elif isinstance(node, exp.ILike) and not fn:
                    # a case-insensitive match without a function: a plain B-tree cannot serve it
                    add(target, "ilike", clause, None, in_or)
                return
            if name == "EQ" and isinstance(left, exp.Column) and isinstance(right, exp.Column):
                add(left, "join", clause, None, in_or)
                add(right, "join", clause, None, in_or)
                return
            for side, other in ((left, right), (right, left)):
                target, fn = _column_side(side)
                if target is not None and not isinstance(other, exp.Column) and not _has_column(other):
                    add(target, _COMPARE_USAGE[name], clause, fn, in_or)
                    return

    for where in wheres:
        predicate(where.this, "where")
    for join in joins:
        on = join.args.get("on")
        if on is not None:
            predicate(on, "on")
    for order in orders:
        if isinstance(order.parent, exp.Window):
            continue
        for o in order.expressions:
            target = o.this if isinstance(o, exp.Ordered) else o
            if isinstance(target, exp.Column):
                add(target, "order", "order")
    for group in group_bys:
        for g in group.expressions:
            if isinstance(g, exp.Column):
                add(g, "group", "group")
    return {"kind": "query", "line": line, "tables": tables, "usages": usages,
            "limit": expr.args.get("limit") is not None}


def _has_column(node: Any) -> bool:
    from sqlglot import exp

    return node is not None and (isinstance(node, (exp.Column, exp.Select, exp.Subquery))
                                 or any(True for _ in node.find_all(exp.Column)))


def _column_side(node: Any) -> tuple[Any, str | None]:
    """(column, None) for a bare column; (column, fname) for lower(col)/upper(col)/date(col)."""
    from sqlglot import exp

    if isinstance(node, exp.Column):
        return node, None
    if isinstance(node, exp.Paren):
        return _column_side(node.this)
    if isinstance(node, exp.Func) and not isinstance(node, exp.AggFunc):
        # a function wrapped around the column (`lower(email)`, `date(created_at)`, `created_at::date`,
        # `extract(year from d)`): only an expression index on the same function serves it
        cols = list(node.find_all(exp.Column))
        if len(cols) == 1 and not any(isinstance(x, (exp.Select, exp.AggFunc)) for x in node.find_all(exp.Select, exp.AggFunc)):
            return cols[0], func_name(node)
    return None, None


_FUNC_ALIASES = {"timestamp_trunc": "date_trunc", "try_cast": "cast"}


def func_name(node: Any) -> str:
    """The name of a SQL function node as an index key uses it: `date`, `lower`, `cast`, `extract`."""
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
    else:
        name = (node.sql_name() if hasattr(node, "sql_name") else type(node).__name__).lower()
    return _FUNC_ALIASES.get(name, name)


def _like_kind(pattern: Any) -> str | None:
    """'infix' for a pattern that starts with a wildcard, 'prefix' for a literal prefix, else None."""
    from sqlglot import exp

    first = pattern
    while isinstance(first, (exp.DPipe, exp.Concat)) or (isinstance(first, exp.Anonymous) and first.name.lower() == "concat"):
        items = first.expressions if not isinstance(first, exp.DPipe) else [first.this]
        if not items:
            return None
        first = items[0]
    if isinstance(first, exp.Literal) and first.is_string:
        s = first.this
        if s.startswith(("%", "_")):
            return "infix"
        return "prefix" if s else None
    return None
