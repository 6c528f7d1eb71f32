"""Score the analyzers against the labeled projects under `fixtures/`.

Every file in a fixture project is fully labeled: a line that should produce a finding of a
category carries `expect: <category>` in a comment (`#`, `--` or `{# #}`), a deliberate near miss
carries `ok: <category>`. A finding of a category on a line without `expect` for that category is
a false positive; an `expect` without a finding is a false negative. Several findings of one
category on one line count once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan
from backend_audit.findings import CATEGORIES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

#: the one place the accuracy thresholds live: category -> (min precision, min recall)
THRESHOLDS: dict[str, tuple[float, float]] = {
    "n-plus-one": (0.95, 0.95),
    "missing-index": (0.95, 0.95),
    "unvalidated-input": (0.95, 0.95),
    "blocking-io": (0.95, 0.95),
}

LABEL = re.compile(r"(?:#|--|\{#)\s*(expect|ok)\s*:\s*([a-z][a-z-]*(?:\s*,\s*[a-z][a-z-]*)*)")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    near_misses: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else (1.0 if not self.fn else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def labels_of(project: Path) -> tuple[set[tuple[str, int, str]], set[tuple[str, int, str]]]:
    expect: set[tuple[str, int, str]] = set()
    ok: set[tuple[str, int, str]] = set()
    for path in sorted(project.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".sql", ".html", ".jinja", ".jinja2", ".j2", ".txt"):
            continue
        rel = path.relative_to(project).as_posix()
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            for m in LABEL.finditer(line):
                for cat in (c.strip() for c in m.group(2).split(",")):
                    if cat not in CATEGORIES:
                        raise ValueError(f"{path}:{n}: unknown category {cat!r} in label")
                    (expect if m.group(1) == "expect" else ok).add((rel, n, cat))
    return expect, ok


def fixture_projects() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def score_all(projects: list[Path] | None = None) -> dict[str, Score]:
    catalog = load_catalog()
    scores = {c: Score() for c in CATEGORIES}
    for project in projects or fixture_projects():
        expect, ok = labels_of(project)
        result = scan(ScanOptions(paths=[str(project)], use_cache=False, jobs=1), catalog)
        got = {(f.path, f.line, f.category) for f in result.findings}
        for cat in CATEGORIES:
            exp_c = {e for e in expect if e[2] == cat}
            got_c = {g for g in got if g[2] == cat}
            s = scores[cat]
            s.tp += len(exp_c & got_c)
            s.fp += len(got_c - exp_c)
            s.fn += len(exp_c - got_c)
            s.near_misses += sum(1 for o in ok if o[2] == cat)
            s.false_positives += [f"{project.name}/{p}:{n}" for p, n, _ in sorted(got_c - exp_c)]
            s.false_negatives += [f"{project.name}/{p}:{n}" for p, n, _ in sorted(exp_c - got_c)]
    return scores


def format_table(scores: dict[str, Score]) -> str:
    rows = [f"{'category':<20} {'precision':>9} {'recall':>7} {'TP':>4} {'FP':>4} {'FN':>4} {'near-misses':>11}"]
    for cat, s in scores.items():
        rows.append(f"{cat:<20} {s.precision:>9.3f} {s.recall:>7.3f} {s.tp:>4} {s.fp:>4} {s.fn:>4} {s.near_misses:>11}")
    return "\n".join(rows)
