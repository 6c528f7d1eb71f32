"""What happens to findings between the analyzers and the renderers: rule selection and severity
overrides, the fail threshold. (Inline suppressions are applied by the engine; the baseline and
the diff filter live in `backend_audit.baseline` and `backend_audit.integrations.git_diff`.)"""

from __future__ import annotations

import fnmatch

from backend_audit.findings import Finding, severity_rank


def rule_matches(rule: str, category: str, codes: list[str]) -> bool:
    """A code is a rule id (BA101), an id prefix (BA1, BA10), a category name, or ALL."""
    for code in codes:
        if code == "ALL" or code == category or rule.startswith(code):
            return True
    return False


def select_findings(findings: list[Finding], select: list[str], ignore: list[str]) -> list[Finding]:
    out = []
    for f in findings:
        if select and not rule_matches(f.rule, f.category, select):
            continue
        if ignore and rule_matches(f.rule, f.category, ignore):
            continue
        out.append(f)
    return out


def path_matches(path: str, pattern: str) -> bool:
    """`tests/*` and `*/migrations/*` match the relative path, `test_*.py` any file's name,
    `legacy/` or `legacy` everything below that folder."""
    pattern = pattern.strip()
    if fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)


def drop_per_file_ignores(findings: list[Finding], per_file: dict[str, list[str]]) -> list[Finding]:
    if not per_file:
        return findings
    return [f for f in findings
            if not any(path_matches(f.path, pattern) and rule_matches(f.rule, f.category, codes)
                       for pattern, codes in per_file.items())]


def apply_severity_overrides(findings: list[Finding], overrides: dict[str, str]) -> None:
    if not overrides:
        return
    # the most specific code wins: BA101 over BA10 over BA1 over a category
    ordered = sorted(overrides.items(), key=lambda kv: len(kv[0]))
    for f in findings:
        for code, severity in ordered:
            if rule_matches(f.rule, f.category, [code]):
                f.severity = severity


def exit_code(findings: list[Finding], fail_on: str, exit_zero: bool) -> int:
    if exit_zero or fail_on == "none":
        return 0
    threshold = severity_rank(fail_on)
    return 1 if any(severity_rank(f.severity) >= threshold for f in findings) else 0
