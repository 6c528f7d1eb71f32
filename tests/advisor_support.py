"""Shared helpers for the advisor tests: a private rule catalog and hand-built findings.

The tests never depend on the real `rules/` files or on the analyzers: they build their own
catalog with `load_catalog(rules_dir=tmp)` and construct `Finding` objects directly.
"""

from __future__ import annotations

from pathlib import Path

from backend_audit.catalog import Catalog, load_catalog
from backend_audit.findings import Finding, Related, ScanResult

RULES = '''
[[rule]]
id = "BA201"
name = "unindexed-filter"
category = "missing-index"
title = "Filter on a column without an index"
severity = "high"
confidence = "high"
description = "A queryset filters on a column that has no index."
why = """Filtering `{model}.{field}` without an index makes the database scan the whole table."""
fix = "Add an index on the column."
tradeoffs = "Each index slows writes slightly and takes disk space."
example_bad = "Book.objects.filter(isbn=code)"
example_good = "isbn = models.CharField(max_length=13, db_index=True)"
references = ["https://docs.djangoproject.com/en/5.2/ref/models/indexes/"]
remediation = "Add `db_index=True` to `{model}.{field}` (or a `Meta.indexes` entry) in a new migration."

[[rule]]
id = "BA101"
name = "query-in-loop"
category = "n-plus-one"
title = "Query per loop iteration"
severity = "medium"
confidence = "high"
description = "A related object is loaded once per row."
why = "Each iteration of the loop over `{model}` runs a query for `{field}`."
fix = "Prefetch the relation."
tradeoffs = "Prefetching loads every related row into memory at once."
example_bad = "for b in Book.objects.all(): b.author.name"
example_good = "for b in Book.objects.select_related('author'): b.author.name"
remediation = "Add `.select_related(\\"{field}\\")` to the queryset in `{function}` before the loop."

[[rule]]
id = "BA401"
name = "blocking-call-in-async"
category = "blocking-io"
title = "Blocking call on the event loop"
severity = "high"
confidence = "high"
description = "A blocking call runs inside async def."
why = "`{call}` blocks the event loop."
fix = "Use an async client."
tradeoffs = "An async client needs its own lifecycle."
example_bad = "requests.get(url)"
example_good = "async with httpx.AsyncClient() as client: await client.get(url)"
remediation = "Replace `{call}` with `{alternative}` (reached through {chain})."

[[rule]]
id = "BA301"
name = "sql-injection"
category = "unvalidated-input"
title = "Request data in SQL text"
severity = "critical"
confidence = "high"
description = "Request data is formatted into SQL."
why = "`{source}` reaches `{sink}` unescaped."
fix = "Use query parameters."
tradeoffs = "None worth mentioning."
example_bad = "cursor.execute(f'select * from t where id={id}')"
example_good = "cursor.execute('select * from t where id=%s', [id])"
remediation = "Pass `{source}` as a parameter to `{sink}` instead of formatting it into the SQL."
'''

#: planted in excerpts, messages and contexts; must never reach the loopback server
PLANTED = {
    "aws": "AKIAIOSFODNN7PLANTED",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "password": "correct-horse-battery-PLANTED",
    "dsn_password": "dbPassPLANTED99",
    "anthropic": "sk-ant-api03-" + "PLANTEDplantedPLANTEDplanted0123",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlUExBTlRFRA",
}


def make_catalog(tmp_path: Path) -> Catalog:
    rules = tmp_path / "advisor_rules"
    rules.mkdir(exist_ok=True)
    (rules / "advisor_test.toml").write_text(RULES, "utf-8")
    return load_catalog(rules_dir=rules)


def index_finding(line: int, fp: str = "", excerpt: str = "", path: str = "app/views.py") -> Finding:
    return Finding(
        rule="BA201", category="missing-index", severity="high", confidence="high", path=path, line=line,
        column=5, end_line=line, end_column=40, message="filter on Book.isbn, which has no index",
        related=[Related("app/models.py", 7, "Book.isbn is declared here without db_index")],
        symbol="book_detail", context={"model": "Book", "field": "isbn", "request_path": "GET /books/<isbn>"},
        excerpt=excerpt or f"{line:>5} | book = Book.objects.filter(isbn=isbn).first()", fingerprint=fp or f"idx{line}",
    )


def n1_finding(line: int = 30) -> Finding:
    return Finding(
        rule="BA101", category="n-plus-one", severity="medium", confidence="high", path="app/reports.py",
        line=line, column=9, end_line=line, end_column=30, message="book.author loads one Author per Book",
        related=[Related("app/reports.py", line - 1, "the loop over Book.objects.all()")],
        symbol="export_books", context={"model": "Book", "field": "author", "function": "export_books"},
        excerpt=f"{line - 1:>5} | for book in Book.objects.all():\n{line:>5} |     rows.append(book.author.name)",
        fingerprint=f"n1{line}",
    )


def blocking_finding(line: int = 12, path: str = "app/api.py") -> Finding:
    return Finding(
        rule="BA401", category="blocking-io", severity="high", confidence="high", path=path, line=line,
        column=5, end_line=line, end_column=30, message="requests.get blocks the event loop",
        related=[Related("app/clients.py", 4, "requests.get is called here")], symbol="fetch",
        context={"call": "requests.get", "alternative": "httpx.AsyncClient.get", "chain": ["fetch", "load_rates"],
                 "async_endpoint": True},
        excerpt=f"{line:>5} |     rates = load_rates()", fingerprint=f"blk{line}",
    )


def secret_finding() -> Finding:
    """A finding whose excerpt, message, related message and context carry planted secrets."""
    p = PLANTED
    excerpt = "\n".join([
        f'    3 | AWS_KEY = "{p["aws"]}"',
        f'    4 | GITHUB_TOKEN = "{p["github"]}"',
        f'    5 | password = "{p["password"]}"',
        f'    6 | DATABASE_URL = "postgres://app:{p["dsn_password"]}@db.internal:5432/app"',
        f'    7 | client = Anthropic(api_key="{p["anthropic"]}")',
        f'    8 | cursor.execute("select * from t where id=" + request.GET["id"])  # {p["jwt"]}',
    ])
    return Finding(
        rule="BA301", category="unvalidated-input", severity="critical", confidence="high", path="app/sql.py",
        line=8, column=5, end_line=8, end_column=60,
        message=f'request.GET["id"] reaches cursor.execute (token {p["github"]})',
        related=[Related("app/sql.py", 8, f'source: request.GET, near password = "{p["password"]}"')],
        flow=[Related("app/sql.py", 8, f'step with {p["aws"]}')],
        symbol="lookup", context={"source": 'request.GET["id"]', "sink": "cursor.execute",
                                  "note": f'SECRET_KEY = "{p["password"]}"', "dsn": f'mysql://root:{p["dsn_password"]}@h/db'},
        excerpt=excerpt, fingerprint="sql8",
    )


def scan_result(root: Path, findings: list[Finding]) -> ScanResult:
    return ScanResult(root=str(root), findings=findings, stats={"files": 3, "python_files": 3},
                      facts={"index": object(), "context": object(), "frameworks_hint": ["django"]})
