"""`--format text`: findings grouped by file with excerpts, then a summary table (rich)."""

from __future__ import annotations

import io

from backend_audit.catalog import Catalog
from backend_audit.findings import ScanResult


def render(result: ScanResult, catalog: Catalog, *, color: bool = False) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=110, highlight=False)
    current = None
    for f in result.findings:
        if f.path != current:
            current = f.path
            console.print(f"\n[bold]{f.path}[/bold]")
        console.print(f"  {f.line}:{f.column} [bold]{f.rule}[/bold] [{f.severity}] {f.message}")
        if f.excerpt:
            console.print(f.excerpt, markup=False)
        for r in f.related:
            console.print(f"      related: {r.path}:{r.line} {r.message}", markup=False)
    for e in result.errors:
        console.print(f"[yellow]warning[/yellow] {e.path}: {e.kind}: {e.message}")
    console.print(f"\n{len(result.findings)} finding(s) in {result.stats.get('files', 0)} file(s)")
    return buf.getvalue()
