"""`[tool.backend-audit]` in pyproject.toml (or a file given with `--config`), validated.

Every key is checked: an unknown key or a value of the wrong type is a `ConfigError` that names
the file and the key. Command-line options override the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend_audit.findings import SEVERITIES


class ConfigError(Exception):
    pass


FAIL_ON = (*SEVERITIES, "none")
FORMATS = ("text", "json", "sarif", "github", "rdjson", "markdown")


@dataclass
class Config:
    source: str | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] | None = None  # replaces the default excludes
    extend_exclude: list[str] = field(default_factory=list)
    fail_on: str = "low"
    severity: dict[str, str] = field(default_factory=dict)  # rule id -> severity override
    #: path glob -> codes not reported in matching files, e.g. {"tests/*" = ["BA4"]}
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    extend_catalogs: list[str] = field(default_factory=list)
    max_file_bytes: int | None = None
    jobs: int | None = None
    cache_dir: str | None = None
    baseline: str | None = None
    format: str = "text"
    model: str | None = None
    max_llm_tokens: int | None = None
    llm: bool = True
    #: per-analyzer options: [tool.backend-audit.<analyzer>] tables, e.g. blocking_io, missing_index
    analyzers: dict[str, dict[str, Any]] = field(default_factory=dict)


ANALYZER_TABLES = ("n-plus-one", "missing-index", "unvalidated-input", "blocking-io", "advisor")


def _str_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    return list(value)


def check_rule_codes(codes: list[str], key: str, where: str) -> list[str]:
    """Each code must be a rule id (BA101), an id prefix (BA1, BA10), a category, or ALL."""
    import re

    for c in codes:
        if not re.fullmatch(r"BA[1-4](\d\d?)?|BA|ALL|n-plus-one|missing-index|unvalidated-input|blocking-io", c):
            raise ConfigError(f"{where}: '{key}' has an unknown rule code {c!r} "
                              "(use an id such as BA101, a prefix such as BA1, or a category)")
    return codes


_check_rule_codes = check_rule_codes  # the name the first CLI used


def check_known_rules(codes: list[str], known: dict[str, Any] | set[str], key: str, where: str) -> None:
    """A full rule id must name a rule of the catalog (a typo must not silently select nothing)."""
    import re

    for c in codes:
        if re.fullmatch(r"BA\d{3}", c) and c not in known:
            raise ConfigError(f"{where}: '{key}' names rule {c!r}, which no catalog defines "
                              "(`backend-audit rules` lists them)")


def parse_config(table: dict[str, Any], where: str, base_dir: Path) -> Config:
    cfg = Config(source=where)
    for key, value in table.items():
        attr = key.replace("-", "_")
        if key in ("select", "ignore"):
            setattr(cfg, attr, check_rule_codes(_str_list(value, key, where), key, where))
        elif key in ("exclude", "extend-exclude"):
            setattr(cfg, attr, _str_list(value, key, where))
        elif key == "extend-catalogs":
            cfg.extend_catalogs = [str(base_dir / p) for p in _str_list(value, key, where)]
        elif key == "fail-on":
            if value not in FAIL_ON:
                raise ConfigError(f"{where}: 'fail-on' must be one of {', '.join(FAIL_ON)} (got {value!r})")
            cfg.fail_on = value
        elif key == "format":
            if value not in FORMATS:
                raise ConfigError(f"{where}: 'format' must be one of {', '.join(FORMATS)} (got {value!r})")
            cfg.format = value
        elif key == "severity":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'severity' must be a table of rule id = severity")
            for rule, sev in value.items():
                check_rule_codes([rule], f"severity.{rule}", where)
                if sev not in SEVERITIES:
                    raise ConfigError(f"{where}: 'severity.{rule}' must be one of {', '.join(SEVERITIES)} (got {sev!r})")
            cfg.severity = dict(value)
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'per-file-ignores' must be a table of path glob = [rule codes]")
            for pattern, codes in value.items():
                check_rule_codes(_str_list(codes, f"per-file-ignores.{pattern}", where),
                                 f"per-file-ignores.{pattern}", where)
            cfg.per_file_ignores = {k: list(v) for k, v in value.items()}
        elif key in ("max-file-bytes", "jobs", "max-llm-tokens"):
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "jobs" else 1):
                raise ConfigError(f"{where}: '{key}' must be a positive integer (got {value!r})")
            setattr(cfg, attr, value)
        elif key in ("cache-dir", "baseline", "model"):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{where}: '{key}' must be a non-empty string")
            setattr(cfg, attr, str(base_dir / value) if key in ("cache-dir", "baseline") else value)
        elif key == "llm":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: 'llm' must be true or false")
            cfg.llm = value
        elif key in ANALYZER_TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{key}' must be a table")
            cfg.analyzers[key] = dict(value)
        else:
            raise ConfigError(f"{where}: unknown key '{key}'")
    return cfg


def load_config(explicit: str | None, search_from: Path) -> Config:
    """Read `--config FILE`, else the nearest pyproject.toml with a [tool.backend-audit] table."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        doc = _read(path)
        if path.name == "pyproject.toml":
            table = doc.get("tool", {}).get("backend-audit", {})
        else:
            table = doc.get("tool", {}).get("backend-audit", doc)
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.backend-audit] must be a table")
        return parse_config(table, str(path), path.parent.resolve())
    directory = search_from.resolve()
    if directory.is_file():
        directory = directory.parent
    for d in (directory, *directory.parents):
        candidate = d / "pyproject.toml"
        if candidate.is_file():
            doc = _read(candidate)
            table = doc.get("tool", {}).get("backend-audit")
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError(f"{candidate}: [tool.backend-audit] must be a table")
                return parse_config(table, str(candidate), d)
        if (d / ".git").exists():
            break
    return Config()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
