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
_SQL_SELECT = re.compile(r"select\s[^;]{0,300}?from\s+[\w`\"{]")
_SQL_UPDATE = re.compile(r"update\s+[\w`\".]+\s+set\s")
#: ...and the statements found by their first words ("create index concurrently" starts where "create index"
#: does), grouped under a substring they all contain ("" for none) so that one scan of a file skips a group
_SQL_LITERAL_GROUPS = (("", ("delete from",)), (" index", ("create index", "create unique index", "drop index")),
                       (" table", ("create table", "alter table")))
#: SQLAlchemy / Django query methods whose expressions the summary cannot describe
_QUERY_METHODS = (".where(", ".filter(", ".filter_by(", ".order_by(", ".exclude(")
#: ...and a sign of an ORM query in the same file (a manager, a session, a select)
_ORM_SIGNS = (".objects", ".query", "select(", "session", "_set.", "Manager", "QuerySet", "update(", "delete(", ".c.",
              ".c[")
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
        sql_facts = _sql_strings(tree, lines, sql_lines, module)
        if sql_facts:
            out["sql"] = sql_facts
    if _has_query_method(text) and any(m in text for m in _ORM_SIGNS):
        sa_lines = sorted({n for m in _QUERY_METHODS for n in _literal_lines(text, m)})
        ex = _SAExtractor(module)
        sa = ex.run(tree, sa_lines)
        if sa:
            out["sa"] = sa
        if ex.method_lines:
            out["method_lines"] = ex.method_lines
    return out or None


def _has_query_method(text: str) -> bool:
    """`any(m in text for m in _QUERY_METHODS)`, with one scan for both `.filter(` and `.filter_by(`
    (most files have none of them: every scan is of the whole text)."""
    if ".filter" in text and (".filter(" in text or ".filter_by(" in text):
        return True
    return any(m in text for m in _QUERY_METHODS if not m.startswith(".filter"))


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
    for gate, literals in _SQL_LITERAL_GROUPS:
        if gate in low:
            for lit in literals:
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
            head = ref.partition(".")[0]
            if head in _DRIVER_HEADS and f"driver:{head}" not in found:
                found.append(f"driver:{head}")
    return found


_DRIVER_HEADS = frozenset({"psycopg2", "psycopg", "asyncpg", "pg8000", "pymysql", "MySQLdb", "aiomysql",
                           "asyncmy", "mysql", "sqlite3", "aiosqlite"})


def _match_lines(pattern: re.Pattern, text: str) -> list[int]:
    """The (sorted, distinct) line numbers where `pattern` matches."""
    out: list[int] = []
    line, pos = 1, 0
    # every start the pattern matches at, not only non-overlapping matches: `from sqlalchemy import select`
    # in line 1 must not swallow the `SELECT ... FROM users` four lines below
    literal = pattern.pattern[:6]
    start = text.find(literal) if literal.isalpha() else -1
    matches = (m for m in (pattern.match(text, i) for i in _positions(text, literal)) if m) if start >= 0 \
        else pattern.finditer(text)
    for m in matches:
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if not out or out[-1] != line:
            out.append(line)
    return out


def _positions(text: str, literal: str):
    i = text.find(literal)
    while i >= 0:
        yield i
        i = text.find(literal, i + 1)


def _spans(node: ast.AST, wanted: list[int]) -> bool:
    """Does the node's line span contain one of the wanted lines? (nodes without a position: yes)"""
    start = getattr(node, "lineno", None)
    if start is None:
        return True
    end = getattr(node, "end_lineno", None) or start
    i = bisect.bisect_left(wanted, start)
    return i < len(wanted) and wanted[i] <= end


_AST = ast.AST


def _child_nodes(node: ast.AST) -> list[ast.AST]:
    """`list(ast.iter_child_nodes(node))`, in the same order, without its two nested generators."""
    out: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, _AST):
            out.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, _AST):
                    out.append(item)
    return out


def _walk(node: ast.AST) -> list[ast.AST]:
    """`list(ast.walk(node))`, in the same (breadth-first) order."""
    out = [node]
    for n in out:  # a list grows while it is iterated: the appended nodes are visited in turn
        out.extend(_child_nodes(n))
    return out


def _pruned_walk(tree: ast.AST, wanted: list[int]):
    """Like ast.walk, but never descends into a statement or expression far from the wanted lines."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in _child_nodes(node):
            if _spans(child, wanted):
                stack.append(child)


def _sql_strings(tree: ast.Module, lines: Any, wanted: list[int], module: Any = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    parsed = 0
    for node, in_reverse, site in _walk_strings(tree, wanted):
        tables: list[str] = []
        value = _string_value(node, tables)
        if value is None or not sqlmod.looks_like_sql(value) or _IDENT_TEMPLATE.search(value):
            continue
        parsed += 1
        if parsed > MAX_SQL_STRINGS:
            break
        start, end = node.lineno, node.end_lineno or node.lineno
        # the line a reviewer points at: the call that runs the SQL (`cur.execute(`), not a line inside the string
        report, call = _report_site(node, site)
        value = _bind_patterns(value, call, site)
        span = [(n, lines.line(n)) for n in range(start, end + 1)]
        loc = _Lines(span)
        for _offset, stmt in sqlmod.split_statements(value):
            for fact in sqlmod.facts_of_statement(stmt, loc.locate, start):
                fact["origin"] = "python"
                fact["reverse"] = in_reverse
                fact["string_line"] = report
                if tables:
                    fact["table_refs"] = {f"dbtable__{i}": _name_ref(r, module) for i, r in enumerate(tables)}
                _relocate(fact, report)
                out.append(fact)
    return out


def _relocate(fact: Any, line: int) -> None:
    """Every line of a fact from a Python string becomes the call's line (no comment fits inside a string)."""
    if isinstance(fact, dict):
        for k, v in fact.items():
            if k == "line" and isinstance(v, int):
                fact[k] = line
            elif isinstance(v, (dict, list)):
                _relocate(v, line)
    elif isinstance(fact, list):
        for v in fact:
            _relocate(v, line)


def _db_table_owner(node: ast.AST) -> str | None:
    """`Employee._meta.db_table` / `models.Employee._meta.db_table` -> "Employee" / "models.Employee"."""
    if isinstance(node, ast.Attribute) and node.attr == "db_table" and isinstance(node.value, ast.Attribute) \
            and node.value.attr == "_meta":
        parts: list[str] = []
        cur = node.value.value
        while isinstance(cur, ast.Attribute):
            parts.append(cur.attr)
            cur = cur.value
        if isinstance(cur, ast.Name) and cur.id not in ("self", "cls"):
            return ".".join([cur.id, *reversed(parts)])
    return None


def _name_ref(dotted: str, module: Any) -> str:
    """A module-relative ref (as the summary writes them) for a dotted name written in this file."""
    head, _, rest = dotted.partition(".")
    imports = module.imports if module is not None else {}
    if head in imports:
        base = imports[head]
    elif module is not None and (head in module.classes or head in module.assigns):
        base = f"@{head}"
    else:
        base = f"${head}"
    return f"{base}.{rest}" if rest else base


def _string_value(node: ast.AST, tables: list[str] | None = None) -> str | None:
    """The constant text of a SQL string; formatted-in values become `{p}` placeholders.

    `"SELECT ... ORDER BY " + sort`, `f"... WHERE id = {x}"`, `"... LIMIT %d" % n` and
    `"...{}".format(x)` keep their shape: only the constant parts are SQL we can read."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            elif tables is not None and isinstance(v, ast.FormattedValue) and _db_table_owner(v.value):
                # `f"SELECT ... FROM {Employee._meta.db_table}"`: the model's table, resolved in analyze()
                tables.append(_db_table_owner(v.value) or "")
                parts.append(f"dbtable__{len(tables) - 1}")
            else:
                parts.append("{p}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_value(node.left, tables), _string_value(node.right, tables)
        if left is None and right is None:
            return None
        return (left if left is not None else "{p}") + (right if right is not None else "{p}")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        fmt = _string_value(node.left)
        if fmt is None:
            return None
        return _PCT_FORMAT.sub(lambda m: "%" if m.group(0) == "%%" else "{p}", fmt)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
        return re.sub(r"\{[^{}]*\}", "{p}", node.func.value.value)
    return None


_PCT_FORMAT = re.compile(r"%%|%(?:\(\w+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr]")
#: calls that only wrap SQL text (the query runs where the wrapper is passed)
_SQL_WRAPPERS = frozenset({"text", "literal_column", "SQL", "sql", "dedent", "strip"})


def _is_sql_expr(node: ast.AST) -> bool:
    """A node `_string_value` can read as the whole SQL text (a literal or a string built from one)."""
    if isinstance(node, (ast.Constant, ast.JoinedStr)):
        return isinstance(node, ast.JoinedStr) or isinstance(node.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _leftmost_str(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)
    return False


def _leftmost_str(node: ast.AST) -> bool:
    while isinstance(node, ast.BinOp):
        node = node.left
    return isinstance(node, (ast.Constant, ast.JoinedStr)) and (
        isinstance(node, ast.JoinedStr) or isinstance(node.value, str))


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _walk_strings(tree: ast.AST, wanted: list[int]):
    """SQL string expressions with a flag (inside a downgrade()/reverse_sql: undoing, not the schema) and
    their site: (outermost enclosing call, the call taking the string as an argument, the variable it is
    assigned to, the enclosing function or module)."""
    stack: list[tuple[ast.AST, bool, tuple]] = [(tree, False, (None, None, None, tree))]
    while stack:
        node, rev, site = stack.pop()
        if not _spans(node, wanted):
            continue
        if _is_sql_expr(node):
            yield node, rev, site
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare string: documentation, not a query
        outer, direct, var, scope = site
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            scope, outer, direct, var = node, None, None, None
            if not isinstance(node, ast.Lambda) and node.name in _SKIP_FUNCS:
                rev = True
        elif isinstance(node, ast.stmt):
            outer, direct, var = None, None, None
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if len(targets) == 1 and isinstance(targets[0], ast.Name):
                    var = targets[0].id
        if isinstance(node, ast.Call):
            outer = outer or node
            sub = (outer, node, var, scope)
            fname = _call_name(node)
            stack.append((node.func, rev, (outer, None, var, scope)))
            for i, a in enumerate(node.args):
                stack.append((a, rev or (fname in _REVERSE_ARGS and i >= _REVERSE_ARGS[fname]), sub))
            for k in node.keywords:
                stack.append((k.value, rev or (fname in _REVERSE_ARGS and k.arg == "reverse_sql"), sub))
            continue
        child_site = (outer, direct, var, scope)
        for child in _child_nodes(node):
            stack.append((child, rev, child_site))


def _report_site(node: ast.AST, site: tuple) -> tuple[int, ast.Call | None]:
    """(line to report, the call that runs the SQL). A string passed to a call: that call's first line
    (`text()` inside `session.execute(` is the execute); a string assigned to a variable: the first call
    after it that takes the variable; otherwise the string's first line."""
    outer, direct, var, scope = site
    if direct is not None:
        call = direct
        if _call_name(direct) in _SQL_WRAPPERS and outer is not None and outer is not direct:
            call = _runner_of(outer, direct) or direct
        if var is not None and outer is direct and _call_name(direct) in _SQL_WRAPPERS:
            # `stmt = text("...")`: reported at the `text(` call (the string is passed to a call we see), but
            # the bound parameters are those of the call that later runs `stmt`
            use = _var_use(scope, var, node.lineno)
            return direct.lineno, use or direct
        return call.lineno, call
    if var is not None:
        use = _var_use(scope, var, node.lineno)
        if use is not None:
            return use.lineno, use
    return node.lineno, None


def _runner_of(outer: ast.Call, wrapper: ast.Call) -> ast.Call | None:
    """The call inside `outer` that takes `wrapper` (e.g. `text(...)`) as an argument."""
    for n in ast.walk(outer):
        if isinstance(n, ast.Call) and (any(_wraps(a, wrapper) for a in n.args)
                                        or any(_wraps(k.value, wrapper) for k in n.keywords)):
            return n
    return None


def _wraps(node: ast.AST, wrapper: ast.Call) -> bool:
    """`node` is `wrapper` or a method chain on it (`text(...).bindparams(...)`)."""
    while True:
        if node is wrapper:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            return False


#: calls that run SQL: preferred over other calls that merely take the SQL text (`logger.debug(sql)`)
_RUNNERS = frozenset({"execute", "executemany", "executescript", "raw", "exec_driver_sql", "fetch", "fetchrow",
                      "fetchval", "query", "scalar", "scalars", "RunSQL", "mogrify", "read_sql", "read_sql_query"})


def _var_use(scope: ast.AST, var: str, after: int, depth: int = 0) -> ast.Call | None:
    """The first call after line `after` taking `var` (or `text(var)`) as an argument; a call that runs
    SQL (`execute`, `raw`, ...) wins over any other call (`print(sql)`)."""
    best: tuple[int, int, int] | None = None
    found: ast.Call | None = None
    nodes = _walk(scope)
    for n in nodes:
        if not isinstance(n, ast.Call) or n.lineno <= after:
            continue
        for a in list(n.args) + [k.value for k in n.keywords]:
            if isinstance(a, ast.Call) and _call_name(a) in _SQL_WRAPPERS and a.args:
                a = a.args[0]
            while isinstance(a, ast.BinOp) and isinstance(a.op, (ast.Add, ast.Mod)):
                a = a.left  # `cur.execute(sql % args)`, `cur.execute(sql + order)`
            if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr == "format":
                a = a.func.value
            if isinstance(a, ast.Name) and a.id == var:
                name = _call_name(n)
                rank = (0 if name in _RUNNERS else 1 if name in _SQL_WRAPPERS else 2, n.lineno, n.col_offset)
                if best is None or rank < best:
                    best, found = rank, n
                break
    if found is not None and _call_name(found) in _SQL_WRAPPERS and depth < 2:
        # `stmt = text(sql)` ... `session.execute(stmt)`: follow the wrapped value to where it runs
        for n in nodes:
            if isinstance(n, ast.Assign) and n.value is found and len(n.targets) == 1 \
                    and isinstance(n.targets[0], ast.Name):
                return _var_use(scope, n.targets[0].id, found.lineno, depth + 1) or found
    return found


# ----- bound LIKE patterns ---------------------------------------------------------------------
_DOLLAR = re.compile(r"\$(\d+)\b")
_POSITIONAL = re.compile(r"%%|%s|\?")
_NAMED = re.compile(r"%\((\w+)\)s|(?<![:\w]):(\w+)")


def _bind_patterns(sql: str, call: ast.Call | None, site: tuple) -> str:
    """Substitute bound parameters built with a leading wildcard (`f"%{q}%"`, `"%" + q + "%"`,
    `"%%%s%%" % q`) into the SQL as `'%p%'` literals, so `name ILIKE %s` reads as the leading-wildcard
    search it is. Only LIKE-shaped SQL is touched; other parameters stay placeholders."""
    if call is None or "like" not in sql.lower():
        return sql
    if _DOLLAR.search(sql) and len(call.args) >= 2:
        # asyncpg: `await conn.fetch("... ILIKE $1", f"%{q}%")`, the values follow the SQL
        scope = site[3]
        return _DOLLAR.sub(lambda m: "'%p%'" if 0 < int(m.group(1)) < len(call.args) and _leading_wildcard(
            _local_value(scope, call.args[int(m.group(1))], call.lineno)) else m.group(0), sql)
    params: ast.AST | None = call.args[1] if len(call.args) >= 2 else None
    if params is None:
        for k in call.keywords:
            if k.arg in ("params", "parameters", "args", "vars"):
                params = k.value
    if params is None:
        # `session.execute(text("... :q").bindparams(q=f"%{x}%"))`
        for a in call.args[:1]:
            if isinstance(a, ast.Call) and isinstance(a.func, ast.Attribute) and a.func.attr == "bindparams":
                params = ast.Call(func=ast.Name(id="dict", ctx=ast.Load()), args=[], keywords=a.keywords)
    scope = site[3]
    params = _local_value(scope, params, call.lineno)
    if isinstance(params, (ast.Tuple, ast.List)):
        wild = [_leading_wildcard(_local_value(scope, e, call.lineno)) for e in params.elts]
        it = iter(wild)

        def pos(m: re.Match) -> str:
            if m.group(0) == "%%":
                return "%%"
            return "'%p%'" if next(it, False) else m.group(0)

        return _POSITIONAL.sub(pos, sql)
    if isinstance(params, ast.Dict):
        named = {k.value: _leading_wildcard(_local_value(scope, v, call.lineno))
                 for k, v in zip(params.keys, params.values) if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        return _NAMED.sub(lambda m: "'%p%'" if named.get(m.group(1) or m.group(2)) else m.group(0), sql)
    if isinstance(params, ast.Call) and _call_name(params) == "dict":
        named = {k.arg: _leading_wildcard(_local_value(scope, k.value, call.lineno)) for k in params.keywords if k.arg}
        return _NAMED.sub(lambda m: "'%p%'" if named.get(m.group(1) or m.group(2)) else m.group(0), sql)
    return sql


def _local_value(scope: ast.AST, node: ast.AST | None, before: int) -> ast.AST | None:
    """A local variable's value: the last plain assignment to it before line `before` in `scope`."""
    if not isinstance(node, ast.Name) or scope is None:
        return node
    best: ast.AST | None = None
    best_line = -1
    for n in _walk(scope):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                and n.targets[0].id == node.id and best_line < n.lineno < before:
            best, best_line = n.value, n.lineno
    return best if best is not None else node


def _leading_wildcard(node: ast.AST | None) -> bool:
    """Is a bound value a LIKE pattern that starts with a wildcard?"""
    first: ast.AST | None = node
    if isinstance(node, ast.JoinedStr):
        first = node.values[0] if node.values else None
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        first = node.left
        while isinstance(first, ast.BinOp) and isinstance(first.op, ast.Add):
            first = first.left
        if isinstance(first, ast.JoinedStr):
            first = first.values[0] if first.values else None
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        fmt = node.left
        return isinstance(fmt, ast.Constant) and isinstance(fmt.value, str) and fmt.value.startswith("%%")
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        first = node.func.value
    return isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith(("%", "_"))


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
        self._tree: ast.Module | None = None
        self._assigns: list[tuple[int, int, int, str, ast.AST]] | None = None
        self.in_or = 0  # the OR group of the conditions being read (0: not inside an OR)
        self.groups = 0
        self.select_names = {name for name, ref in self.imports.items()
                             if ref in ("sqlalchemy.select", "sqlalchemy.future.select", "sqlmodel.select",
                                        "sqlalchemy.sql.select", "sqlalchemy.update", "sqlalchemy.delete",
                                        "sqlalchemy.sql.update", "sqlalchemy.sql.delete", "sqlmodel.update",
                                        "sqlmodel.delete", "sqlalchemy.sql.expression.select")}

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
        self._tree = tree
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

    def local_string(self, name: ast.Name) -> ast.AST:
        """The value last assigned to a local name before its use, within the enclosing function."""
        if self._tree is None:
            return name
        if self._assigns is None:
            self._assigns = []
            for fn in ast.walk(self._tree):
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for n in ast.walk(fn):
                        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                                and isinstance(n.value, (ast.Constant, ast.JoinedStr, ast.BinOp, ast.Call)):
                            self._assigns.append((fn.lineno, fn.end_lineno or fn.lineno, n.lineno,
                                                  n.targets[0].id, n.value))
        best = None
        for lo, hi, line, var, value in self._assigns:
            if var == name.id and lo <= name.lineno <= hi and line < name.lineno:
                key = (lo, line)
                if best is None or key > best[0]:
                    best = (key, value)
        return best[1] if best is not None else name

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
                if isinstance(f, ast.Attribute) and f.attr in ("update", "delete") and \
                        self.ref(f) in ("sqlalchemy.update", "sqlalchemy.delete", "sqlmodel.update", "sqlmodel.delete"):
                    return True  # `sa.update(t).where(...)`
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
        """`User.email` -> (ref of User, "email"); `users.c.email` / `users.c["email"]` -> (ref of users, "email")."""
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and \
                node.value.attr in ("c", "columns") and isinstance(node.slice, ast.Constant) and \
                isinstance(node.slice.value, str):
            r = self.ref(node.value.value)
            if r and not r.startswith("$"):
                return r, node.slice.value
            return None
        if isinstance(node, ast.Attribute):
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr in ("c", "columns"):
                owner = owner.value
                if isinstance(owner, ast.Attribute) and owner.attr == "__table__":
                    owner = owner.value  # `User.__table__.c.email` is `User.email`
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
                if col is None and usage not in (None, "isnull", "order"):
                    fn = _func_col(node.func.value, self)  # `func.lower(User.email).in_(...)`
                    if fn is not None:
                        self.add(chain, node, f"func:{fn[0]}", fn[1], join)
                    return
                if col is None or usage is None:
                    return
                if usage in ("like", "ilike") and node.func.attr in ("like", "ilike"):
                    arg = node.args[0] if node.args else None
                    if isinstance(arg, ast.Name):
                        arg = self.local_string(arg)  # `pattern = f"%{q}%"` ... `.ilike(pattern)`
                    usage = _like_arg(arg, node.func.attr)
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
            fn = _func_col(left, self) or (_func_col(right, self) if lcol is None else None)
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


#: SQL functions SQLAlchemy exposes outside `func` that wrap a column in the generated SQL
_SA_WRAPPERS = {"extract": "extract", "cast": "cast", "try_cast": "cast", "collate": "collate"}


def _func_col(node: ast.AST, ex: _SAExtractor) -> tuple[str, tuple[str, str]] | None:
    """`func.lower(User.email)` -> ("lower", (User ref, "email")); `func.date(Post.created_at)`,
    `extract("year", Post.published_at)`, `cast(Post.created_at, Date)` likewise: the one column the
    function wraps, with the function's name (the key an expression index would have)."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    fref = ex.ref(node.func) or ""
    name = ""
    if isinstance(node.func, ast.Attribute) and (".func." in f".{fref}" or fref.startswith("sqlalchemy.func")):
        name = node.func.attr.lower()
    elif fref.startswith(("sqlalchemy.", "sqlmodel.")) and fref.rsplit(".", 1)[-1] in _SA_WRAPPERS:
        name = _SA_WRAPPERS[fref.rsplit(".", 1)[-1]]
    elif isinstance(node.func, ast.Attribute) and node.func.attr == "cast" and len(node.args) == 1:
        col = ex.column(node.func.value)  # `Post.created_at.cast(Date)`
        return ("cast", col) if col else None
    if not name:
        return None
    cols = [c for c in (ex.column(a) for a in node.args) if c]
    others = [a for a in node.args if ex.column(a) is None]
    if len(cols) == 1 and all(isinstance(a, (ast.Constant, ast.Name, ast.Attribute, ast.Call)) and
                              _func_col(a, ex) is None and not _has_column(a, ex) for a in others):
        return name, cols[0]
    return None


def _has_column(node: ast.AST, ex: _SAExtractor) -> bool:
    return any(ex.column(n) is not None for n in ast.walk(node) if isinstance(n, (ast.Attribute, ast.Subscript)))


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
    # a pattern we cannot read: LIKE may be a prefix search; ILIKE is case-insensitive either way
    return "ilike" if method == "ilike" else None
