"""`--write-baseline FILE` / `--baseline FILE`: accept today's findings, report only new ones.

A baseline records findings by fingerprint (see `findings.assign_fingerprints`), which has no line
numbers in it: a baselined finding whose line moves stays hidden, while a new finding (even of the
same rule in the same file) is reported. The file is JSON so it diffs well in review; the rule,
path and message are stored next to each fingerprint only to make it readable.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend_audit import __version__
from backend_audit.findings import Finding
from backend_audit.output import write_output

BASELINE_FORMAT = 1


class BaselineError(Exception):
    """An unreadable or malformed baseline file (the CLI exits with code 2)."""


def baseline_document(findings: list[Finding]) -> dict:
    entries = [{"fingerprint": f.fingerprint, "rule": f.rule, "path": f.path, "message": f.message}
               for f in sorted(findings, key=lambda f: (f.path, f.rule, f.fingerprint))]
    return {"backend_audit_baseline": BASELINE_FORMAT, "tool_version": __version__, "findings": entries}


def write_baseline(path: str | Path, findings: list[Finding]) -> None:
    """Write atomically (raises `output.OutputError` when the file cannot be written)."""
    write_output(path, json.dumps(baseline_document(findings), indent=2, ensure_ascii=False) + "\n")


def load_fingerprints(path: str | Path) -> set[str]:
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise BaselineError(f"baseline file not found: {p} (create it with --write-baseline)") from None
    except IsADirectoryError:
        raise BaselineError(f"baseline {p} is a folder, not a file") from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BaselineError(f"baseline {p} is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"baseline {p} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict) or "backend_audit_baseline" not in doc:
        raise BaselineError(f"{p} is not a backend-audit baseline (missing key 'backend_audit_baseline')")
    if doc["backend_audit_baseline"] != BASELINE_FORMAT:
        raise BaselineError(f"baseline {p}: unsupported format {doc['backend_audit_baseline']!r} "
                            f"(expected {BASELINE_FORMAT}); write it again with --write-baseline")
    entries = doc.get("findings")
    if not isinstance(entries, list):
        raise BaselineError(f"baseline {p}: key 'findings' must be a list")
    out: set[str] = set()
    for i, entry in enumerate(entries):
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fp, str) or not fp:
            raise BaselineError(f"baseline {p}: findings[{i}] has no 'fingerprint' string")
        out.add(fp)
    return out


def filter_baseline(findings: list[Finding], path: str | Path) -> tuple[list[Finding], int]:
    """The findings not in the baseline, and how many were hidden."""
    known = load_fingerprints(path)
    kept = [f for f in findings if f.fingerprint not in known]
    return kept, len(findings) - len(kept)
