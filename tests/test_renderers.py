"""The output formats: text, json, sarif, github, rdjson, markdown.

Results are built directly (no analyzers needed) against a small catalog written here, so these
tests pin the renderers' contracts: SARIF valid against the official schema, GitHub workflow
commands that survive hostile messages and paths, reviewdog's rdjson shape, the JSON contract,
the PR comment's size limit, and a readable text report.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

from backend_audit import __version__
from backend_audit.catalog import load_catalog
from backend_audit.findings import Diagnostic, Finding, Related, ScanResult
from backend_audit.renderers import (
    FORMATS,
    github_format,
    markdown_format,
    rdjson_format,
    render,
    sarif_format,
)

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

RULES_TOML = '''
[[rule]]
id = "BA101"
name = "query-in-loop"
title = "Query per loop iteration"
severity = "high"
confidence = "high"
description = "A query runs once per row of an outer loop."
why = "Each iteration pays a database round trip."
fix = "Load the relation up front with `select_related`."
tradeoffs = "Joins fetch more columns."
example_bad = """
for book in Book.objects.all():
    print(book.author.name)
"""
example_good = """
for book in Book.objects.select_related("author"):
    print(book.author.name)
"""
references = ["https://docs.djangoproject.com/en/5.2/ref/models/querysets/#select-related"]

[[rule]]
id = "BA301"
name = "sql-from-request"
title = "Request data in SQL text"
severity = "critical"
confidence = "medium"
description = "Request data is formatted into SQL text."
why = "SQL injection."
fix = "Pass parameters to the driver."
tradeoffs = "None worth having."
example_bad = "cursor.execute(f'SELECT * FROM t WHERE a = {q}')"
example_good = "cursor.execute('SELECT * FROM t WHERE a = %s', [q])"

[[rule]]
id = "BA401"
name = "blocking-call-in-async"
title = "Blocking call on the event loop"
severity = "medium"
confidence = "high"
description = "A blocking call runs inside async def."
why = "It stalls every other request."
fix = "Use the async client."
tradeoffs = "A new dependency."
example_bad = "requests.get(url)"
example_good = "await client.get(url)"
'''


@pytest.fixture(autouse=True)
def _outside_github_actions(monkeypatch):
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)


@pytest.fixture()
def catalog(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "test.toml").write_text(RULES_TOML, encoding="utf-8")
    return load_catalog(rules_dir=rules)


def excerpt(lines: dict[int, str]) -> str:
    return "\n".join(f"{n:>5} | {text}" for n, text in sorted(lines.items()))


def n_plus_one(line: int = 12, path: str = "app/views.py") -> Finding:
    return Finding(
        rule="BA101", category="n-plus-one", severity="high", confidence="high", path=path,
        line=line, column=15, end_line=line, end_column=33,
        message="`book.author` runs a query for every book",
        related=[Related("app/models.py", 5, "`author` is a ForeignKey without select_related"),
                 Related("app/views.py", line - 1, "the loop over `Book.objects.all()`")],
        symbol="app.views.list_books",
        excerpt=excerpt({line - 2: "def list_books(request):",
                         line - 1: "    for book in Book.objects.all():",
                         line: "        print(book.author.name)",
                         line + 1: "    return None"}),
        fingerprint="f" * 32,
    )


def injection() -> Finding:
    return Finding(
        rule="BA301", category="unvalidated-input", severity="critical", confidence="medium",
        path="api/résumé views.py", line=8, column=5, end_line=9, end_column=30,
        message="`request.GET['q']` reaches `cursor.execute` as SQL text",
        flow=[Related("api/résumé views.py", 3, "source: `request.GET['q']`", column=9, end_line=3, end_column=25),
              Related("api/helpers.py", 14, "passed through `build_query(q)`"),
              Related("api/résumé views.py", 8, "sink: `cursor.execute`")],
        symbol="api.views.search",
        excerpt=excerpt({7: "    q = build_query(request.GET['q'])  # «é»",
                         8: "    cursor.execute(",
                         9: "        f'SELECT * FROM book WHERE title = {q}')"}),
        fingerprint="a" * 32,
    )


def blocking() -> Finding:
    return Finding(
        rule="BA401", category="blocking-io", severity="medium", confidence="high", path="svc/client.py",
        line=4, column=11, end_line=4, end_column=29, message="`requests.get` blocks the event loop",
        excerpt=excerpt({3: "async def fetch(url):", 4: "    return requests.get(url)"}), fingerprint="b" * 32,
    )


def make_result(findings: list[Finding] | None = None, errors: list[Diagnostic] | None = None,
                root: str = "/srv/project") -> ScanResult:
    return ScanResult(
        root=root,
        findings=[n_plus_one(), injection(), blocking()] if findings is None else findings,
        errors=[Diagnostic("broken.py", "syntax-error", "invalid syntax", line=3),
                Diagnostic("data/blob.py", "binary-file", "the file is binary")] if errors is None else errors,
        stats={"files": 7, "seconds": 0.25, "cache_hits": 0},
    )


# --- SARIF ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sarif_validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def assert_valid_sarif(validator, doc) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [(list(e.path), e.message) for e in errors[:5]]


def test_sarif_is_valid_against_the_official_schema(catalog, sarif_validator):
    doc = json.loads(render("sarif", make_result(), catalog))
    assert_valid_sarif(sarif_validator, doc)
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1


def test_schema_check_can_fail(catalog, sarif_validator):
    doc = json.loads(render("sarif", make_result(), catalog))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0
    assert len(list(sarif_validator.iter_errors(doc))) >= 2


def test_sarif_rules_describe_each_rule_that_has_a_finding(catalog):
    run = sarif_format.to_sarif(make_result([n_plus_one(), injection()]), catalog)["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "backend-audit" and driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["BA101", "BA301"]  # BA401 has no finding here
    ba101, ba301 = rules
    assert ba101["shortDescription"]["text"] == "Query per loop iteration"
    assert ba101["fullDescription"]["text"].startswith("A query runs once per row")
    assert "select_related" in ba101["help"]["text"]
    assert "```python\nfor book in Book.objects.all():" in ba101["help"]["markdown"]
    assert "## How to fix" in ba101["help"]["markdown"]
    assert ba101["defaultConfiguration"]["level"] == "error"
    assert ba101["properties"]["category"] == "n-plus-one" and "n-plus-one" in ba101["properties"]["tags"]
    assert "security-severity" not in ba101["properties"]
    assert float(ba301["properties"]["security-severity"]) >= 9.0  # critical
    assert "security" in ba301["properties"]["tags"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_result_locations_fingerprints_related_and_flow(catalog):
    run = sarif_format.to_sarif(make_result(), catalog)["runs"][0]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    res = by_rule["BA101"]
    assert res["level"] == "error"
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app/views.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 12, "startColumn": 15, "endLine": 12, "endColumn": 33}
    assert re.fullmatch(r"[0-9a-f]{16}:1", res["partialFingerprints"]["primaryLocationLineHash"])
    assert res["partialFingerprints"]["backendAudit/v1"] == "f" * 32
    related = res["relatedLocations"]
    assert [r["id"] for r in related] == [1, 2]
    assert related[0]["physicalLocation"]["artifactLocation"]["uri"] == "app/models.py"
    assert related[0]["message"]["text"].startswith("`author` is a ForeignKey")
    # GitHub shows related locations that the message links to
    assert "[app/models.py:5](1)" in res["message"]["text"]
    assert "[app/views.py:11](2)" in res["message"]["text"]

    flow = by_rule["BA301"]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [step["location"]["message"]["text"] for step in flow] == [
        "source: `request.GET['q']`", "passed through `build_query(q)`", "sink: `cursor.execute`"]
    assert [step["executionOrder"] for step in flow] == [1, 2, 3]
    assert flow[0]["location"]["physicalLocation"]["region"]["startColumn"] == 9
    assert by_rule["BA401"]["level"] == "warning"

    base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base.startswith("file:///") and base.endswith("/") and "srv/project" in base


def test_sarif_line_hash_survives_a_line_shift(catalog):
    before = sarif_format.to_sarif(make_result([n_plus_one(line=12)]), catalog)
    after = sarif_format.to_sarif(make_result([n_plus_one(line=40)]), catalog)
    def fp(doc):
        return doc["runs"][0]["results"][0]["partialFingerprints"]

    assert fp(before) == fp(after)
    assert after["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 40


def test_sarif_repeated_identical_lines_get_distinct_hashes(catalog):
    a, b = n_plus_one(line=12), n_plus_one(line=30)
    doc = sarif_format.to_sarif(make_result([a, b]), catalog)
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in doc["runs"][0]["results"]]
    assert hashes[0].split(":")[0] == hashes[1].split(":")[0]
    assert [h.split(":")[1] for h in hashes] == ["1", "2"]


def test_sarif_unicode_and_spaces_in_paths_are_percent_encoded(catalog, sarif_validator):
    doc = sarif_format.to_sarif(make_result([injection()]), catalog)
    assert_valid_sarif(sarif_validator, doc)
    uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.isascii() and " " not in uri
    assert unquote(uri) == "api/résumé views.py"
    # the JSON keeps Unicode messages readable
    assert "«é»" not in json.dumps(doc)  # excerpts are not copied into SARIF
    assert "request.GET['q']" in render("sarif", make_result([injection()]), catalog)


def test_sarif_paths_are_relative_to_the_checkout_in_github_actions(catalog, sarif_validator):
    result = make_result(root="/home/runner/work/repo/services/api")
    doc = sarif_format.to_sarif(result, catalog, workspace="/home/runner/work/repo")
    assert_valid_sarif(sarif_validator, doc)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == "file:///home/runner/work/repo/"
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert uris == ["services/api/api/r%C3%A9sum%C3%A9%20views.py", "services/api/app/views.py",
                    "services/api/svc/client.py"]
    note = run["invocations"][0]["toolExecutionNotifications"][0]
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "services/api/broken.py"


def test_sarif_escapes_brackets_only_when_they_could_form_a_link(catalog):
    f = blocking()
    f.message = "see [docs](1) for `x[0]`"
    text = sarif_format.to_sarif(make_result([f]), catalog)["runs"][0]["results"][0]["message"]["text"]
    assert text == r"see \[docs\](1) for `x\[0\]`"
    f.message = "`request.GET['q']` reaches SQL"
    text = sarif_format.to_sarif(make_result([f]), catalog)["runs"][0]["results"][0]["message"]["text"]
    assert text == "`request.GET['q']` reaches SQL"


def test_sarif_diagnostics_become_tool_execution_notifications(catalog, sarif_validator):
    doc = sarif_format.to_sarif(make_result([]), catalog)
    assert_valid_sarif(sarif_validator, doc)
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is True
    notes = inv["toolExecutionNotifications"]
    assert [n["descriptor"]["id"] for n in notes] == ["syntax-error", "binary-file"]
    assert notes[0]["level"] == "warning"
    assert notes[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_rule_missing_from_the_catalog_still_validates(catalog, sarif_validator):
    f = blocking()
    f.rule = "BA499"
    doc = sarif_format.to_sarif(make_result([f]), catalog)
    assert_valid_sarif(sarif_validator, doc)
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "BA499" and rule["defaultConfiguration"]["level"] == "warning"


# --- GitHub workflow commands -----------------------------------------------------------------

def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Parse one workflow command the way the Actions runner does (ActionCommand.TryParseV2)."""
    assert line.startswith("::")
    end = line.index("::", 2)
    head, data = line[2:end], line[end + 2:]
    name, _, props_text = head.partition(" ")
    props = {}
    for pair in filter(None, props_text.split(",")):
        key, _, value = pair.partition("=")
        props[key] = unescape(value, prop=True)
    return name, props, unescape(data)


def unescape(text: str, prop: bool = False) -> str:
    text = text.replace("%0D", "\r").replace("%0A", "\n")
    if prop:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%25", "%")


def test_github_annotations_map_severity_and_positions(catalog):
    out = github_format.render(make_result(), catalog, workspace="")
    lines = out.splitlines()
    commands = [parse_command(line) for line in lines if line.startswith("::")]
    names = [c[0] for c in commands]
    assert names == ["error", "error", "warning", "warning", "warning"]  # critical, high, medium, 2 diagnostics
    _, props, data = commands[1]
    assert props == {"file": "app/views.py", "line": "12", "endLine": "12", "col": "15", "endColumn": "33",
                     "title": "BA101 query-in-loop (high, n-plus-one)"}
    assert data.splitlines()[0] == "`book.author` runs a query for every book"
    assert "related: app/models.py:5" in data
    # a multi-line range carries no columns (GitHub rejects them)
    _, props, data = commands[0]
    assert props["line"] == "8" and props["endLine"] == "9" and "col" not in props
    assert "flow 1: api/résumé views.py:3 source:" in data
    _, props, data = commands[3]
    assert props == {"file": "broken.py", "line": "3", "title": "backend-audit: syntax-error"}
    assert data == "invalid syntax"


def test_github_escaping_survives_hostile_messages_and_paths(catalog):
    f = blocking()
    f.path = "odd, dir/a:b %41.py"
    f.message = "100% sure\r\n::error file=x.py::injected, title=x: y"
    f.related = [Related("other,file.py", 2, "line\nbreak")]
    out = github_format.render(make_result([f], errors=[]), catalog, workspace="")
    lines = out.splitlines()
    assert len(lines) == 2 and not lines[1].startswith("::")  # one command, one summary line
    name, props, data = parse_command(lines[0])
    assert name == "warning"
    assert props["file"] == "odd, dir/a:b %41.py"
    assert props["title"] == "BA401 blocking-call-in-async (medium, blocking-io)"
    assert data == "100% sure\r\n::error file=x.py::injected, title=x: y\nrelated: other,file.py:2 line\nbreak"
    assert github_format.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github_format.escape_data("a:b,c%\r") == "a:b,c%25%0D"


def test_github_paths_are_relative_to_the_workspace(catalog):
    result = make_result([blocking()], errors=[], root="/home/runner/work/repo/services/api")
    out = github_format.render(result, catalog, workspace="/home/runner/work/repo")
    assert parse_command(out.splitlines()[0])[1]["file"] == "services/api/svc/client.py"
    out = github_format.render(result, catalog, workspace="/elsewhere")
    assert parse_command(out.splitlines()[0])[1]["file"] == "svc/client.py"


# --- reviewdog rdjson -------------------------------------------------------------------------

def test_rdjson_shape(catalog):
    doc = json.loads(rdjson_format.render(make_result(), catalog, base_dir="/elsewhere"))
    assert doc["source"]["name"] == "backend-audit"
    diags = doc["diagnostics"]
    assert len(diags) == 5
    first = next(d for d in diags if d["code"]["value"] == "BA101")
    assert first["location"] == {"path": "app/views.py", "range": {"start": {"line": 12, "column": 15},
                                                                   "end": {"line": 12, "column": 33}}}
    assert first["severity"] == "ERROR"
    assert first["code"]["url"].startswith("https://docs.djangoproject.com")
    assert first["source"]["name"] == "backend-audit"
    assert first["message"] == "`book.author` runs a query for every book"
    assert [r["location"]["path"] for r in first["related_locations"]] == ["app/models.py", "app/views.py"]
    assert {d["severity"] for d in diags} == {"ERROR", "WARNING"}
    errors = [d for d in diags if d["code"]["value"].startswith("backend-audit/")]
    assert [d["code"]["value"] for d in errors] == ["backend-audit/syntax-error", "backend-audit/binary-file"]
    assert errors[0]["location"] == {"path": "broken.py", "range": {"start": {"line": 3}}}
    flow = next(d for d in diags if d["code"]["value"] == "BA301")["related_locations"]
    assert flow[0]["message"] == "data flow step 1: source: `request.GET['q']`"


def test_rdjson_columns_count_utf8_bytes(catalog):
    f = blocking()
    f.excerpt = excerpt({4: "    x = 'é𐐀'; requests.get(url)"})
    f.column, f.end_column = 16, 33  # characters: the 'r' of requests and one past the ')'
    doc = rdjson_format.to_rdjson(make_result([f], errors=[]), catalog, base_dir="/elsewhere")
    rng = doc["diagnostics"][0]["location"]["range"]
    assert rng["start"]["column"] == 16 + 1 + 3  # é is 2 bytes, 𐐀 is 4
    assert rng["end"]["column"] == 33 + 1 + 3
    assert rdjson_format.byte_column("a𐐀b", 3) == 6


def test_rdjson_paths_are_relative_to_the_working_directory(catalog):
    result = make_result([blocking()], errors=[], root="/repo/sub")
    doc = rdjson_format.to_rdjson(result, catalog, base_dir="/repo")
    assert doc["diagnostics"][0]["location"]["path"] == "sub/svc/client.py"


# --- JSON contract ----------------------------------------------------------------------------

def test_json_contract_fields(catalog):
    doc = json.loads(render("json", make_result(), catalog))
    assert set(doc) >= {"version", "findings", "errors", "report", "stats"}
    assert doc["version"] == __version__
    f = doc["findings"][0]
    assert set(f) >= {"rule", "category", "severity", "confidence", "path", "line", "column", "end_line",
                      "end_column", "message", "related", "fingerprint"}
    assert f["related"][0] == {"path": "app/models.py", "line": 5,
                               "message": "`author` is a ForeignKey without select_related"}
    assert doc["findings"][1]["path"] == "api/résumé views.py"  # Unicode kept, not \u-escaped
    assert "résumé" in render("json", make_result(), catalog)
    assert doc["errors"][0] == {"path": "broken.py", "kind": "syntax-error", "message": "invalid syntax", "line": 3}
    assert doc["stats"]["files"] == 7


# --- Markdown ---------------------------------------------------------------------------------

def test_markdown_header_counts_findings_and_details(catalog):
    md = render("markdown", make_result(), catalog)
    assert md.startswith("# backend-audit report")
    assert "**3 findings** (1 critical, 1 high, 1 medium) in 3 files." in md
    assert "| n-plus-one | 0 | 1 | 0 | 0 | 1 |" in md
    assert "| unvalidated-input | 1 | 0 | 0 | 0 | 1 |" in md
    assert "| **Total** | 1 | 1 | 1 | 0 | **3** |" in md
    # most severe first, with path:line references and no links
    assert md.index("`api/résumé views.py:8`") < md.index("`app/views.py:12`") < md.index("`svc/client.py:4`")
    assert "](" not in md
    assert "<details><summary>code and related places</summary>" in md
    assert "```python\n  10 | def list_books(request):\n  11 |     for book in Book.objects.all():\n> 12 |" in md
    assert "1. `api/résumé views.py:3` source: `request.GET['q']`" in md
    assert "`broken.py:3` syntax-error: invalid syntax" in md
    assert md.count("<details>") == md.count("</details>")


def test_markdown_escapes_html_mentions_and_tables(catalog):
    f = blocking()
    f.message = "<script>alert(1)</script> in @login_required | *x* `a|b`"
    md = render("markdown", make_result([f], errors=[]), catalog)
    assert "<script>" not in md
    assert "\\<script\\>" in md
    assert "@login_required" not in md  # no GitHub mention
    assert "`a|b`" in md  # code spans are kept as code


def test_markdown_truncates_to_the_limit(catalog):
    findings = []
    for i in range(600):
        f = n_plus_one(line=10 + i * 5, path=f"app/module_{i:03}.py")
        f.message = f"`book.author` runs a query for every book (case {i}) " + "x" * 80
        findings.append(f)
    md = markdown_format.render(make_result(findings), catalog)
    assert len(md) <= markdown_format.DEFAULT_LIMIT < markdown_format.GITHUB_COMMENT_LIMIT
    assert "more findings not shown here" in md
    assert md.count("<details>") == md.count("</details>")
    assert md.count("```") % 2 == 0
    small = markdown_format.to_markdown(make_result(findings), catalog, limit=5_000)
    assert len(small) <= 5_000 and "not shown" in small
    assert "| **Total** | 0 | 600 | 0 | 0 | **600** |" in small  # the counts are always complete


def test_markdown_stays_under_the_limit_with_huge_messages(catalog):
    f = n_plus_one()
    f.message = "`x` " + "y" * 200_000
    f.excerpt = excerpt({12: "z" * 100_000})
    errors = [Diagnostic(f"bad{i}.py", "syntax-error", "z" * 5_000) for i in range(60)]
    md = markdown_format.to_markdown(make_result([f, blocking()], errors=errors), catalog, limit=30_000)
    assert len(md) <= 30_000
    assert md.count("<details>") == md.count("</details>") and md.count("```") % 2 == 0
    assert "`svc/client.py:4`" in md and "`app/views.py:12`" in md  # long texts are cut, not the findings
    assert "- … and 40 more" in md


@pytest.fixture()
def fake_advisor(monkeypatch):
    """A stand-in for `backend_audit.advisor.render` (written by another engineer)."""
    module = types.ModuleType("backend_audit.advisor.render")
    module.report_markdown = lambda report: f"### Fix first\n\n{report['summary']}\n\n```python\nx = 1\n```\n"
    monkeypatch.setitem(sys.modules, "backend_audit.advisor.render", module)
    return module


def test_markdown_and_text_include_the_report(catalog, fake_advisor):
    result = make_result()
    result.report = {"summary": "Prefetch authors in the book list."}
    md = render("markdown", result, catalog)
    assert "## Remediation report" in md and "Prefetch authors in the book list." in md
    text = render("text", result, catalog)
    assert "Remediation report" in text and "Fix first" in text and "Prefetch authors" in text


def test_report_from_the_offline_advisor_cites_the_same_finding_ids(catalog):
    advisor = pytest.importorskip("backend_audit.advisor")
    result = make_result()
    result.report = advisor.build_report(result, catalog, advisor.AdvisorOptions(use_llm=False))
    cited = {fid: entry["fingerprint"] for fid, entry in result.report["findings"].items()}
    md = render("markdown", result, catalog)
    text = render("text", result, catalog)
    assert "## Remediation report" in md and "Remediation report" in text
    for f in result.findings:
        fid = next(k for k, fp in cited.items() if fp == f.fingerprint)
        assert f"**{fid} · {f.severity}** · {f.rule}" in md
        assert f"[{fid}] {f.line}:{f.column}  {f.rule}" in text
        assert re.search(rf"\b{fid}\b", md[md.index("## Remediation report"):])  # the report cites it


def test_report_cannot_mention_github_users(catalog, fake_advisor):
    result = make_result()
    result.report = {"summary": "ping @octocat and @org/team, mail a@b.io; keep `@app.route` and\n"
                                "```python\n@login_required\ndef view(): ...\n```"}
    md = render("markdown", result, catalog)
    report = md[md.index("## Remediation report"):]
    assert "@octocat" not in report and "@org/team" not in report
    assert "@\u200boctocat" in report and "a@b.io" in report
    assert "`@app.route`" in report and "\n@login_required\n" in report


def test_report_is_capped_in_markdown(catalog, fake_advisor):
    result = make_result()
    result.report = {"summary": "word " * 20_000}
    md = markdown_format.to_markdown(result, catalog, limit=20_000)
    assert len(md) <= 20_000
    assert "`app/views.py:12`" in md  # findings keep their room


def test_report_is_skipped_when_the_advisor_renderer_is_missing(catalog, monkeypatch):
    monkeypatch.setitem(sys.modules, "backend_audit.advisor.render", None)  # import raises ImportError
    result = make_result()
    result.report = {"summary": "anything"}
    assert "Remediation report" not in render("markdown", result, catalog)
    assert "Remediation report" not in render("text", result, catalog)


def test_report_renderer_failure_does_not_break_output(catalog, fake_advisor):
    fake_advisor.report_markdown = lambda report: 1 / 0
    result = make_result()
    result.report = {"summary": "x"}
    assert "`app/views.py:12`" in render("markdown", result, catalog)


# --- text -------------------------------------------------------------------------------------

def test_text_groups_by_file_with_excerpts_flow_and_summary(catalog):
    text = render("text", make_result(), catalog, color=False)
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    files = [line.split("  (")[0] for line in lines if line.endswith(("finding)", "findings)"))]
    assert files == ["api/résumé views.py", "app/views.py", "svc/client.py"]
    assert "  [F2] 12:15  BA101 query-in-loop  high  confidence high  n-plus-one" in lines
    assert "    `book.author` runs a query for every book" in lines
    assert "    11 |     for book in Book.objects.all():" in lines
    assert "  > 12 |         print(book.author.name)" in lines
    assert "    related app/models.py:5  `author` is a ForeignKey without select_related" in lines
    assert "    flow    1. api/résumé views.py:3  source: `request.GET['q']`" in lines
    assert "            2. api/helpers.py:14  passed through `build_query(q)`" in lines
    assert "  > 8 |     cursor.execute(" in lines and "  > 9 |         f'SELECT * FROM book WHERE title = {q}')" in lines
    assert "warning: broken.py:3: syntax-error: invalid syntax" in lines
    assert "warning: data/blob.py: binary-file: the file is binary" in lines
    summary = text[text.index("Findings by category and severity"):]
    assert re.search(r"n-plus-one\s+0\s+1\s+0\s+0\s+1", summary)
    assert re.search(r"unvalidated-input\s+1\s+0\s+0\s+0\s+1", summary)
    assert re.search(r"total\s+1\s+1\s+1\s+0\s+3", summary)
    assert "3 findings in 3 files; scanned 7 files in 0.25 s; 2 file diagnostics" in text


def test_text_does_not_interpret_markup_in_messages(catalog):
    f = blocking()
    f.message = "[bold red]not markup[/] and [link=x]y[/link] :smile:"
    f.path = "app/[weird].py"
    text = render("text", make_result([f], errors=[]), catalog, color=False)
    assert "[bold red]not markup[/] and [link=x]y[/link] :smile:" in text
    assert "app/[weird].py  (1 finding)" in text


def test_text_colour_only_when_asked(catalog):
    assert "\x1b[" in render("text", make_result(), catalog, color=True)
    assert "\x1b[" not in render("text", make_result(), catalog, color=False)


def test_text_is_stable(catalog):
    shuffled = make_result()
    shuffled.findings.reverse()
    assert render("text", make_result(), catalog) == render("text", shuffled, catalog)


# --- every format on odd input ----------------------------------------------------------------

def odd_findings() -> list[Finding]:
    return [
        Finding(rule="BA499", category="blocking-io", severity="low", confidence="low", path="x.py",
                line=0, column=0, end_line=0, end_column=0, message=""),
        Finding(rule="BA101", category="n-plus-one", severity="high", confidence="high", path="y.py",
                line=5, column=10, end_line=3, end_column=2, message="end before start", excerpt="garbage"),
        Finding(rule="BA101", category="n-plus-one", severity="high", confidence="high", path="/abs/z.py",
                line=1, column=1, end_line=1, end_column=1, message="\x00\x1b[31mcontrol\x1b[0m",
                related=[Related("", 0, "")], flow=[Related("q.py", 0, "")]),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_handles_empty_and_odd_results(catalog, fmt, sarif_validator):
    empty = render(fmt, make_result([], errors=[], root=""), catalog)
    assert isinstance(empty, str) and empty.endswith("\n")
    odd = render(fmt, make_result(odd_findings(), errors=[Diagnostic("", "internal", "boom")]), catalog)
    assert isinstance(odd, str)
    if fmt == "sarif":
        assert_valid_sarif(sarif_validator, json.loads(empty))
        assert_valid_sarif(sarif_validator, json.loads(odd))
    if fmt in ("json", "rdjson"):
        json.loads(odd)
    if fmt == "github":
        assert all(line.startswith("::") for line in odd.splitlines()[:-1])
        for line in odd.splitlines()[:-1]:
            _, props, _ = parse_command(line)
            if "endLine" in props:
                assert 1 <= int(props["line"]) <= int(props["endLine"])
    if fmt in ("text", "github", "markdown"):
        # scanned code must not be able to drive the terminal or the CI log
        assert "\x1b" not in odd and "\x00" not in odd
        assert "x1b" in odd and "control" in odd
