"""Per-file facts the generic summary lacks, read from the source text with cheap regexes.

This is the `collect()` half of the blocking-I/O analyzer: a pure function of the file's text.
Every pattern starts with a literal so the regex engine can skip ahead quickly; what a regex
cannot check (word boundaries, `async for`, indentation) is checked by hand on the few matches.
Possessive quantifiers (`*+`, `++`) mark the places where giving characters back could never lead
to a match: same matches, without the regex engine's futile backtracking on every candidate line.
"""

from __future__ import annotations

import re
from typing import Any

#: `for <target> in <expr>` (statements and comprehensions). The patterns start with a literal so
#: the regex engine can skip ahead quickly; word boundaries and `async for` are checked by hand.
_FOR = re.compile(r"for[ \t]+[^\n:=;]*?[ \t]+in[ \t]+([A-Za-z_][\w.]*)")
#: `if <expr>:` / `elif not <expr>:` ending a line: a truth test of the whole expression
_IF = re.compile(r"if[ \t]+(?:not[ \t]+)?([A-Za-z_][^\n:#]*(?:\([^\n#]*\))?)[ \t]*:[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
#: a condition that is a plain (dotted) name or one call chain: `qs`, `Book.objects.filter(x=1)`
_COND = re.compile(r"[A-Za-z_][\w.]*(?:\(.*\))?\Z")
#: an import statement's names (checked by hand to be indented, i.e. function-local) and its `from`
_IMPORT = re.compile(r"import[ \t]+([^\n;]+)")
_FROM = re.compile(r"from\s+([.\w]+)\Z")
#: an annotated local assignment `name: Type = value` inside a block (the summary keeps the value)
_ANNOTATED = re.compile(r"\n[ \t]++([A-Za-z_]\w*+)[ \t]*+:[ \t]*+([A-Za-z_][\w.]*+(?:\[[^\n=]*\])?)[ \t]*+=(?!=)")
#: the part of `_ANNOTATED` from its colon on: a line `_ANNOTATED` matches has one of these at its first colon
_ANNOTATION_TAIL = re.compile(r":[ \t]*+[A-Za-z_][\w.]*+(?:\[[^\n=]*\])?[ \t]*+=(?!=)")
#: a method called on a parenthesised expression (`(base / name).write_text(...)`): the summary
#: has no ref for such a call, only its position
_PAREN_METHOD = re.compile(r"\)[ \t]*\.(read_text|write_text|read_bytes|write_bytes|iterdir)\(")
#: `self.x = <something> or Ctor(...)` / `... else Ctor(...)`: the summary cannot type the value,
#: but the fallback constructor tells what the attribute holds
_ATTR_DEFAULT = re.compile(
    r"self\.([A-Za-z_]\w*+)[ \t]*+(?::[^=\n]++)?=[^=\n][^\n]*?\b(?:or|else)[ \t]++([A-Za-z_][\w.]*+)\(")
#: a sync `with Ctor(...)` statement: entering it runs the class's `__enter__`
_WITH = re.compile(r"with[ \t]+([A-Za-z_][\w.]*)\(")
_PAREN_METHODS = frozenset({"read_text", "write_text", "read_bytes", "write_bytes", "iterdir"})
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
#: the leading dotted name of an expression: `_WORD` characters and dots
_LEADING_NAME = re.compile(r"[A-Za-z0-9_.]*")


def collect_facts(text: str) -> dict[str, Any] | None:
    """The per-file facts of the blocking-I/O analyzer (see `BlockingIOAnalyzer.collect`)."""
    out: list[tuple[int, int, str, int]] = []
    if "for " in text:
        _positions(text, _FOR, out, _is_sync_for, lambda m, col: -1)
    if "if " in text and ("objects" in text or "models" in text or "queryset" in text or "QuerySet" in text):
        # truth tests only matter for querysets: skip files that show no sign of the ORM
        _positions(text, _IF, out, _is_if_statement, lambda m, col: col + len(m.group(1)))
    out.sort()
    local = _local_imports(text) if "import " in text else []
    line_of = _LineCounter(text)
    annotated = [(line_of(m.start(1)), m.group(1), m.group(2)) for m in _annotated_matches(text)]
    line_of = _LineCounter(text)
    paren = [(line_of(m.start(1)), m.group(1)) for m in _PAREN_METHOD.finditer(text)
             if m.group(1) in _PAREN_METHODS]
    line_of = _LineCounter(text)
    defaults = [(line_of(m.start()), m.group(1), m.group(2)) for m in _ATTR_DEFAULT.finditer(text)] \
        if "self." in text else []
    withs: list[tuple[int, int, str, int]] = []
    if "with " in text:
        _positions(text, _WITH, withs, _is_sync_with, lambda m, col: -1)
    if not out and not local and not annotated and not paren and not defaults and not withs:
        return None
    return {"eval": out, "imports": local, "annotated": annotated, "paren_methods": paren,
            "attr_defaults": defaults, "with": [(line, col) for line, col, _, _ in withs]}


def _annotated_matches(text: str) -> list[re.Match[str]]:
    """`list(_ANNOTATED.finditer(text))`, found from the (few) lines with an annotation-like tail
    instead of trying the pattern at every newline. Each match of `_ANNOTATED` lies within one
    line and starts at the newline before it, so trying `_ANNOTATED` at the newline before each
    candidate line finds the same matches, in order."""
    out: list[re.Match[str]] = []
    tried = -2
    for tail in _ANNOTATION_TAIL.finditer(text):
        newline = text.rfind("\n", 0, tail.start())
        if newline < 0 or newline == tried:  # the first line has no newline before it
            continue
        tried = newline
        m = _ANNOTATED.match(text, newline)
        if m is not None:
            out.append(m)
    return out


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _LineCounter:
    """`_line_of` for increasing positions (regex matches in order), counting each newline once."""

    __slots__ = ("text", "line", "pos")

    def __init__(self, text: str):
        self.text = text
        self.line = 1
        self.pos = 0

    def __call__(self, pos: int) -> int:
        if pos < self.pos:  # not increasing after all: count from the start
            return _line_of(self.text, pos)
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _local_imports(text: str) -> list[tuple[int, str, str]]:
    """(line, bound name, ref) of indented `import x` / `from .y import z as w` statements."""
    out: list[tuple[int, str, str]] = []
    line, scanned = 1, 0
    for m in _IMPORT.finditer(text):
        start = m.start()
        line_start = text.rfind("\n", 0, start) + 1
        if line_start == start or text[line_start] not in " \t":
            continue  # module level: the summary has it
        prefix = text[line_start:start].strip()
        if prefix:
            fm = _FROM.match(prefix)
            if fm is None:
                continue
            module: str | None = fm.group(1)
        else:
            module = None
        line += text.count("\n", scanned, start)
        scanned = start
        names = m.group(1).split("#", 1)[0].strip().strip("()").strip()
        for part in names.split(","):
            bits = part.split()
            if not bits or bits[0] == "*" or not (len(bits) == 1 or (len(bits) == 3 and bits[1] == "as")):
                continue
            if module is None:
                ref = bits[0] if len(bits) == 3 else bits[0].split(".")[0]
                name = bits[2] if len(bits) == 3 else ref
            else:
                sep = "" if module.endswith(".") else "."
                ref = f"{module}{sep}{bits[0]}"
                name = bits[-1]
            if name.isidentifier():
                out.append((line, name, ref))
    return out


def _is_sync_with(text: str, m: re.Match[str]) -> bool:
    s = m.start()
    head = text[text.rfind("\n", 0, s) + 1:s]
    return not head.strip() and bool(head)  # an indented statement (inside a function), not `async with`


def _is_sync_for(text: str, m: re.Match[str]) -> bool:
    s = m.start()
    if s and text[s - 1] in _WORD:
        return False
    return not text[max(0, s - 16):s].rstrip().endswith("async")


def _is_if_statement(text: str, m: re.Match[str]) -> bool:
    s = m.start()
    head = text[text.rfind("\n", 0, s) + 1:s].strip()
    return head in ("", "el") and bool(_COND.match(m.group(1)))


def _positions(text: str, rx: re.Pattern[str], out: list, keep, end_of) -> None:
    """Append (line, column, leading dotted name, end column) for every kept match of `rx`."""
    line, line_start, scanned = 1, 0, 0
    for m in rx.finditer(text):
        if not keep(text, m):
            continue
        start = m.start(1)
        newlines = text.count("\n", scanned, start)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", scanned, start) + 1
        scanned = start
        col = start - line_start
        expr = m.group(1)
        i = _LEADING_NAME.match(expr).end()
        out.append((line, col, expr[:i].rstrip("."), end_of(m, col)))


