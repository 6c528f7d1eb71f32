"""Secret redaction: nothing that looks like a credential leaves the machine.

`redact(text)` replaces secret *values* with `[REDACTED]` and keeps the identifiers around them
(`password = "[REDACTED]"`, `postgres://app:[REDACTED]@db/app`), so the model still sees what the
code does. It covers:

* tokens of well-known formats wherever they appear (AWS access key ids, GitHub, Slack, Stripe,
  Anthropic, OpenAI, Google API keys, JWTs, bearer tokens);
* string literals assigned to a secret-looking name in code: `password = "..."`,
  `SECRET_KEY = '...'`, `api_key="..."` (keyword arguments), `{"token": "..."}` (dict entries);
* `.env`-style lines (`DB_PASSWORD=hunter2`, `export API_TOKEN=...`);
* PEM private key blocks (also when an excerpt cuts the block off);
* credentials inside connection URLs (`scheme://user:password@host`).

`redact_obj` applies it to every string inside a JSON-like structure. Redaction is deliberately
greedy: a false redaction costs the model a little context; a missed one leaks a credential.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "[REDACTED]"

#: words that make a name secret-looking (matched case-insensitively inside the identifier)
_SECRET_WORD = (r"(?:passw(?:or)?d|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
                r"private[_-]?key|client[_-]?secret|credentials?|auth[_-]?key|signing[_-]?key|"
                r"session[_-]?key|encryption[_-]?key|salt|dsn|webhook[_-]?url|bearer)")
_SECRET_NAME = rf"[A-Za-z0-9_\-]*{_SECRET_WORD}[A-Za-z0-9_\-]*"

_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)

#: (pattern, replacement) for tokens recognisable by their shape alone
_TOKEN_PATTERNS: list[re.Pattern[str]] = [
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),  # AWS key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{8,}"),  # Slack
    re.compile(r"\bhttps://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{10,}\b"),  # Stripe
    re.compile(r"\bwhsec_[0-9A-Za-z]{16,}\b"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{16,}"),  # Anthropic (before the OpenAI pattern)
    re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),  # OpenAI
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),  # Google API keys
    re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"),  # Google OAuth access tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"),  # JWT
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b"),  # GitLab
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    re.compile(r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),  # SendGrid
]

#: libpq / ODBC keyword connection strings: `dbname=app user=app password=... host=db`, `Pwd=...;`
_DSN_AFTER = re.compile(
    r"(?i)(\b(?:user|uid|username|host|hostaddr|dbname|server|database|port|data source)=[^\s;'\",()]*[\s;]+"
    r"(?:[\w.-]+=[^\s;'\",()]*[\s;]+)*(?:password|passwd|pwd)=)([^\s;'\",()]+)"
)
_DSN_BEFORE = re.compile(r"(?i)(\b(?:password|passwd|pwd)=)([^\s;'\",()]+)(?=;|[\s;]+[\w.-]+=)")

#: `Authorization: Bearer <token>` / `Basic <b64>` in strings and headers
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)([A-Za-z0-9._~+/\-]{12,}=*)")

#: credentials in a URL: keep the scheme, the user and the host
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s:/@'\"`]*):([^\s@/'\"`]+)@")

#: `name = "literal"`, `name: str = 'literal'`, `name="literal"` (kwargs), `name := "..."`
_ASSIGN_PREFIX = rf"(?i)(\b{_SECRET_NAME}\b\s*(?::\s*[A-Za-z_][\w\[\], .|]*)?\s*:?=\s*(?:[rRbBuU]{{0,2}}))"
#: triple-quoted values may span lines; ordinary string literals never do
_ASSIGNED_TRIPLE = re.compile(_ASSIGN_PREFIX + r"(\"\"\"|''')(.*?)(\2)", re.DOTALL)
_ASSIGNED_LITERAL = re.compile(_ASSIGN_PREFIX + r"([\"'])((?:\\.|(?!\2)[^\\\n])*)(\2)")
#: `"password": "literal"` / `'token': 'literal'` in dicts, JSON, YAML-ish mappings
_DICT_ENTRY = re.compile(
    rf"(?i)([\"']{_SECRET_NAME}[\"']\s*:\s*[rRbBuU]{{0,2}})([\"'])((?:\\.|(?!\2)[^\\\n])*)(\2)"
)
#: YAML / INI / headers: `password: value` without quotes (value up to end of line)
_COLON_UNQUOTED = re.compile(rf"(?im)^(\s*(?:>?\s*\d+\s*\|\s*)?{_SECRET_NAME}\s*:\s+)(?![\"'{{\[(])([^\s#,]{{4,}})[ \t]*$")
#: `.env` lines: an upper-case key, `=` without spaces, an unquoted value
_ENV_LINE = re.compile(
    rf"(?m)^(\s*(?:>?\s*\d+\s*\|\s*)?(?:export\s+)?(?=[A-Z0-9_]*{_SECRET_WORD.upper()})[A-Z][A-Z0-9_]*=)([^\s'\"#][^\s#]*)"
)
#: an unquoted, token-like value (letters and digits mixed, long) after `secret_name =`
_ASSIGNED_TOKEN = re.compile(
    rf"(?i)(\b{_SECRET_NAME}\b\s*[:=]\s*)(?=[A-Za-z0-9+/_\-]*\d)(?=[A-Za-z0-9+/_\-]*[A-Za-z])([A-Za-z0-9+/_\-]{{16,}}=*)(?![\w.(\[])"
)


def _mask_literal(match: re.Match[str]) -> str:
    prefix, quote, value, end = match.group(1), match.group(2), match.group(3), match.group(4)
    if not value.strip() or value == MASK or _looks_like_placeholder(value):
        return match.group(0)
    return f"{prefix}{quote}{MASK}{end}"


def _looks_like_placeholder(value: str) -> bool:
    """Values that are clearly not secrets: env-var names, format fields, short UI labels."""
    v = value.strip()
    return bool(re.fullmatch(r"\{[\w.]*\}|%\(\w+\)s|%s|\$\{?\w+\}?|<[\w -]+>", v))


def redact_tokens(text: str) -> str:
    """Only the shape-based patterns (tokens, key blocks, URL credentials): safe on any text,
    including serialized JSON, because no replacement can swallow a quote or a bracket."""
    if not text:
        return text
    out = _PRIVATE_KEY.sub(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----", text)
    out = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@" if m.group(3) != MASK else m.group(0), out)
    for pattern in _TOKEN_PATTERNS:
        out = pattern.sub(MASK, out)
    return out


def redact(text: str) -> str:
    """Return `text` (code, a message, a value) with every secret value replaced by `[REDACTED]`."""
    if not text:
        return text
    out = redact_tokens(text)
    out = _ASSIGNED_TRIPLE.sub(_mask_literal, out)
    out = _ASSIGNED_LITERAL.sub(_mask_literal, out)
    out = _DICT_ENTRY.sub(_mask_literal, out)
    out = _ENV_LINE.sub(lambda m: f"{m.group(1)}{MASK}" if m.group(2) != MASK else m.group(0), out)
    out = _COLON_UNQUOTED.sub(lambda m: f"{m.group(1)}{MASK}" if m.group(2) != MASK else m.group(0), out)
    out = _DSN_AFTER.sub(lambda m: f"{m.group(1)}{MASK}" if m.group(2) != MASK else m.group(0), out)
    out = _DSN_BEFORE.sub(lambda m: f"{m.group(1)}{MASK}" if m.group(2) != MASK else m.group(0), out)
    out = _ASSIGNED_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}" if not m.group(3).startswith("[") else m.group(0), out)
    return out


def redact_obj(value: Any) -> Any:
    """Redact every string in a JSON-like value (dict keys are kept: they are identifiers)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_obj(v) for v in value]
    return value
