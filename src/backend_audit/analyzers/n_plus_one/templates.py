"""Django and Jinja2 templates: loops over context variables and what each row touches.

A regex scan (no template engine): `{% for x in y %}` ... `{% endfor %}` with their lines,
`{% with a=b %}` / `{% set a = b %}` aliases, every dotted expression in `{{ ... }}` and in
`{% if / elif / for / with / set %}` tags, `{% include "x" with a=b %}` and `{% extends %}`.
Expressions are kept as dotted paths with `()` for explicit Jinja calls: `b.tags.all()`.
"""

from __future__ import annotations

import re
from typing import Any

_TAG = re.compile(r"\{%-?\s*(.*?)\s*-?%\}|\{\{-?\s*(.*?)\s*-?\}\}|\{#.*?#\}", re.DOTALL)
_STRING = re.compile(r"\"[^\"]*\"|'[^']*'")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*(?:\([^()]*\))?|\([^()]*\))*)")
_FOR = re.compile(r"^for\s+(.+?)\s+in\s+(.+?)(?:\s+reversed)?(?:\s+if\s+.*)?(?:\s+recursive)?$", re.DOTALL)
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False",
                       "None", "loop", "forloop", "block", "super", "csrf_token", "request", "perms", "user"})


def _line_of(text: str, pos: int, starts: list[int]) -> int:
    import bisect

    return bisect.bisect_right(starts, pos)


def _exprs(fragment: str) -> list[str]:
    """Dotted expressions in a template expression, filters' names dropped."""
    fragment = _STRING.sub(" ", fragment)
    out = []
    parts = fragment.split("|")
    candidates = [parts[0]] + [p.split(":", 1)[1] for p in parts[1:] if ":" in p]
    for c in candidates:
        for m in _DOTTED.finditer(c):
            expr = re.sub(r"\s+", "", m.group(1))
            head = expr.split(".", 1)[0].split("(", 1)[0]
            if head in _KEYWORDS or head.isdigit():
                continue
            # Jinja filter calls / tests like `x is defined` leave plain names: keep them, cheap
            out.append(expr)
    return out


def collect_template(text: str) -> dict[str, Any] | None:
    if "{%" not in text and "{{" not in text:
        return None
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    loops: list[list] = []  # [targets, iter_expr, line, end_line]
    open_loops: list[int] = []
    uses: list[tuple[str, int]] = []
    withs: list[tuple[str, str, int]] = []
    includes: list[tuple[str, int, tuple, bool]] = []
    extends = None
    for m in _TAG.finditer(text):
        line = _line_of(text, m.start(), starts)
        if m.group(1) is not None:
            tag = m.group(1).strip()
            word = tag.split(None, 1)[0] if tag else ""
            rest = tag[len(word):].strip()
            if word == "for":
                fm = _FOR.match(tag)
                if fm:
                    targets = tuple(t.strip() for t in fm.group(1).split(",") if t.strip())
                    it = _exprs(fm.group(2))
                    loops.append([targets, it[0] if it else "", line, line])
                    open_loops.append(len(loops) - 1)
                    for e in it:
                        uses.append((e, line))
            elif word == "endfor":
                if open_loops:
                    loops[open_loops.pop()][3] = line
            elif word in ("with", "set"):
                for am in re.finditer(r"([A-Za-z_]\w*)\s*=\s*([^\s=][^=]*?)(?=\s+[A-Za-z_]\w*\s*=|$)", rest):
                    e = _exprs(am.group(2))
                    if e:
                        withs.append((am.group(1), e[0], line))
                    for x in e:
                        uses.append((x, line))
                am2 = re.match(r"^(.+?)\s+as\s+([A-Za-z_]\w*)$", rest)
                if am2:
                    e = _exprs(am2.group(1))
                    if e:
                        withs.append((am2.group(2), e[0], line))
            elif word in ("if", "elif"):
                for e in _exprs(rest):
                    uses.append((e, line))
            elif word == "include":
                nm = re.match(r"""^["']([^"']+)["'](.*)$""", rest)
                if nm:
                    tail = nm.group(2)
                    mapping = tuple((a, (_exprs(b) or [""])[0]) for a, b in
                                    re.findall(r"([A-Za-z_]\w*)\s*=\s*([\w.]+)", tail))
                    includes.append((nm.group(1), line, mapping, bool(re.search(r"\bonly\b", tail))))
            elif word == "extends":
                nm = re.match(r"""^["']([^"']+)["']""", rest)
                if nm:
                    extends = nm.group(1)
            elif word in ("url", "firstof", "cycle", "blocktrans", "blocktranslate", "filter"):
                for e in _exprs(rest):
                    uses.append((e, line))
        elif m.group(2) is not None:
            for e in _exprs(m.group(2)):
                uses.append((e, line))
    if not loops and not includes and not uses:
        return None
    return {"loops": [tuple(x) for x in loops], "uses": uses, "withs": withs, "includes": includes,
            "extends": extends}


def template_name(rel: str) -> str | None:
    """The name a view uses for a template file: the part after the last `templates/` or `jinja2/`."""
    parts = rel.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in ("templates", "jinja2"):
            return "/".join(parts[i + 1:])
    return None
