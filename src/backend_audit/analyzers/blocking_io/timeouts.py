"""BA403: outbound HTTP calls that can wait forever (no timeout, or timeout=None).

Each library's real defaults are catalog data (`[[catalog.blocking_io.timeouts]]`): requests and
urllib wait forever unless given a timeout, httpx has a 5 s default (only an explicit None is
reported). Reported in sync and async code alike. Mixed into the analyzer's run state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend_audit.analyzers.blocking_io import model as catalog_model
from backend_audit.findings import Finding
from backend_audit.index.project import FunctionInfo, split_ref, strip_markers

if TYPE_CHECKING:  # pragma: no cover
    from backend_audit.analyzers.base import AnalysisContext
    from backend_audit.index.project import ProjectIndex

#: the names a timeout-relevant HTTP call ends with (cheap filter before resolving)
HTTP_NAMES = frozenset({
    "get", "post", "put", "patch", "delete", "head", "options", "request", "stream", "urlopen",
    "Client", "AsyncClient",
})
_HTTP_LIBS = ("requests", "httpx", "urllib")


def _display(ref: str) -> str:
    return ref[len("builtins."):] if ref.startswith("builtins.") else ref.lstrip("$")


class TimeoutChecks:
    """The BA403 half of the analysis; needs `ctx`, `cat`, `index`, `variants`, `request_set`."""

    ctx: AnalysisContext
    cat: catalog_model.BlockingCatalog
    index: ProjectIndex
    _adapter_memo: dict[tuple[str, ...], bool]
    sites: Any  # analyzer._Sites: `http`, the candidate call sites

    def _timeouts(self) -> list[Finding]:
        index = self.index
        if not any(ref.split(".", 1)[0] in _HTTP_LIBS for s in index.summaries.values() for ref in s.imports.values()):
            return []
        out: list[Finding] = []
        # the sites with a ref (not `$local...`) ending with an HTTP name, no `**kwargs`, in index order
        for info, site in self.sites.http:
            target = index.resolve(info.module, site.ref)
            if not target:
                continue
            entry = None
            for v in self.variants(target):
                entry = self.cat.timeouts.match(v)
                if entry is not None:
                    if v != target and entry.overrides and self._overrides(target, entry.overrides):
                        entry = None
                    break
            if entry is None:
                continue
            value = site.kwargs.get(entry.timeout_arg)
            if value is None and entry.timeout_position is not None and len(site.args) > entry.timeout_position:
                value = site.args[entry.timeout_position]
            if value is None:
                if entry.default != "none" or self._adapter_sets_timeout(entry):
                    continue
                problem = "no timeout"
            elif self._is_none(info, value, entry):
                problem = "timeout=None"
            else:
                continue
            shown = _display(target)
            on_path = info.qualified in self.request_set
            if problem == "no timeout":
                msg = (f"`{shown}` without a timeout: {entry.library} waits forever by default, so one hung "
                       f"peer blocks this worker indefinitely; pass timeout=")
            else:
                msg = f"`{shown}` with timeout=None disables the timeout: one hung peer blocks this call forever"
            context = {"call": shown, "library": entry.library, "problem": problem,
                       "request_path": on_path, "function": info.qualified,
                       "kind": "network", "alternative": "an explicit timeout=(connect, read)", "chain": []}
            out.append(self.ctx.finding("BA403", info.path, site.line, site.col, site.end_line, site.end_col, msg,
                                        severity=self._severity("BA403", info.qualified),
                                        symbol=info.summary.qualname, context=context))
        return out

    def _adapter_sets_timeout(self, entry: catalog_model.TimeoutEntry) -> bool:
        """A project transport adapter that sets a default timeout (mounted on the sessions)."""
        if not entry.adapter_bases:
            return False
        memo = self._adapter_memo.get(entry.adapter_bases)
        if memo is None:
            memo = False
            for cls in self.index.subclasses(set(entry.adapter_bases)):
                info = self.index.classes[cls]
                s = info.summary
                if "timeout" in s.attrs or "timeout" in s.instance_attrs or f"{cls}.send" in self.index.functions:
                    memo = True
                    break
            self._adapter_memo[entry.adapter_bases] = memo
        return memo

    def _overrides(self, target: str, names: tuple[str, ...]) -> bool:
        """Whether the project class at the head of `target` defines one of `names` (or a timeout)."""
        segs = split_ref(target)
        parts: list[str] = []
        for seg in segs:
            name, markers = strip_markers(seg)
            parts.append(name)
            key = ".".join(parts)
            if key in self.index.classes:
                for cls in self.index.mro(key):
                    info = self.index.classes[cls]
                    if any(f"{cls}.{n}" in self.index.functions for n in names):
                        return True
                    if "timeout" in info.summary.attrs or "timeout" in info.summary.instance_attrs:
                        return True
                return False
            if markers:
                return False
        return False

    def _is_none(self, info: FunctionInfo, value: tuple, entry: catalog_model.TimeoutEntry) -> bool:
        if value == ("const", None):
            return True
        if value[0] == "call" and value[1] and entry.none_values:
            ref = self.index.resolve(info.module, value[1])
            if ref and f"{ref}(None)" in entry.none_values and value[2][:1] == [("const", None)] \
                    and len(value[2]) == 1 and not value[3]:
                return True
        return False
