"""`[tool.backend-audit]` configuration: found, parsed, and every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import write

from backend_audit.config import ConfigError, load_config, parse_config

FULL = '''
[tool.backend-audit]
select = ["BA1", "blocking-io"]
ignore = ["BA103"]
exclude = ["legacy"]
extend-exclude = ["generated/*.py"]
fail-on = "high"
extend-catalogs = ["catalogs/ours.toml"]
max-file-bytes = 1000
jobs = 2
cache-dir = ".cache/ba"
baseline = "audit-baseline.json"
format = "json"
model = "claude-sonnet-4-5"
max-llm-tokens = 5000
llm = false

[tool.backend-audit.per-file-ignores]
"tests/*" = ["BA4"]

[tool.backend-audit.severity]
BA401 = "critical"
n-plus-one = "low"

[tool.backend-audit.blocking-io]
extra = 1
'''


def test_full_configuration_is_read_from_the_nearest_pyproject(tmp_path):
    write(tmp_path, "pyproject.toml", FULL)
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    cfg = load_config(None, sub)
    assert cfg.source == str(tmp_path / "pyproject.toml")
    assert cfg.select == ["BA1", "blocking-io"] and cfg.ignore == ["BA103"]
    assert cfg.exclude == ["legacy"] and cfg.extend_exclude == ["generated/*.py"]
    assert cfg.fail_on == "high" and cfg.format == "json"
    # paths in the file are relative to the file, wherever the tool runs from
    assert cfg.extend_catalogs == [str(tmp_path / "catalogs/ours.toml")]
    assert cfg.cache_dir == str(tmp_path / ".cache/ba")
    assert cfg.baseline == str(tmp_path / "audit-baseline.json")
    assert (cfg.max_file_bytes, cfg.jobs, cfg.max_llm_tokens, cfg.llm) == (1000, 2, 5000, False)
    assert cfg.severity == {"BA401": "critical", "n-plus-one": "low"}
    assert cfg.analyzers == {"blocking-io": {"extra": 1}}
    assert cfg.per_file_ignores == {"tests/*": ["BA4"]}


def test_no_configuration_gives_defaults(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n')
    cfg = load_config(None, tmp_path)
    assert cfg.source is None and cfg.select == [] and cfg.fail_on == "low" and cfg.exclude is None


def test_search_stops_at_the_repository_root(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.backend-audit]\nfail-on = "critical"\n')
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert load_config(None, tmp_path / "repo").fail_on == "low"


def test_explicit_config_file_plain_or_pyproject(tmp_path):
    plain = write(tmp_path, "audit.toml", 'fail-on = "medium"\nselect = ["BA4"]\n')
    cfg = load_config(str(plain), tmp_path)
    assert cfg.fail_on == "medium" and cfg.select == ["BA4"]
    nested = write(tmp_path, "other.toml", '[tool.backend-audit]\nfail-on = "high"\n')
    assert load_config(str(nested), tmp_path).fail_on == "high"
    py = write(tmp_path, "conf/pyproject.toml", '[tool.backend-audit]\nfail-on = "critical"\n')
    assert load_config(str(py), tmp_path).fail_on == "critical"


@pytest.mark.parametrize("body, needles", [
    ('colour = "red"', ["unknown key 'colour'"]),
    ('select = "BA1"', ["'select'", "list of strings"]),
    ('select = ["BA9"]', ["'select'", "BA9"]),
    ('ignore = ["sql-injection"]', ["'ignore'", "sql-injection"]),
    ('exclude = [1, 2]', ["'exclude'"]),
    ('fail-on = "urgent"', ["'fail-on'", "urgent"]),
    ('format = "xml"', ["'format'", "xml"]),
    ('max-file-bytes = 0', ["'max-file-bytes'"]),
    ('max-file-bytes = "1MB"', ["'max-file-bytes'", "1MB"]),
    ('jobs = -1', ["'jobs'"]),
    ('jobs = true', ["'jobs'"]),
    ('cache-dir = ""', ["'cache-dir'"]),
    ('llm = "no"', ["'llm'"]),
    ('severity = "high"', ["'severity'"]),
    ('[tool.backend-audit.severity]\nBA101 = "urgent"', ["severity.BA101", "urgent"]),
    ('[tool.backend-audit.severity]\nBAD = "high"', ["severity.BAD"]),
    ('blocking-io = 3', ["'blocking-io'", "table"]),
    ('per-file-ignores = ["tests"]', ["'per-file-ignores'", "table"]),
    ('[tool.backend-audit.per-file-ignores]\n"tests/*" = "BA4"', ["per-file-ignores.tests/*", "list of strings"]),
    ('[tool.backend-audit.per-file-ignores]\n"tests/*" = ["BA4x"]', ["per-file-ignores.tests/*", "BA4x"]),
])
def test_bad_values_name_the_file_and_key(tmp_path, body, needles):
    text = "[tool.backend-audit]\n" + body + "\n"
    write(tmp_path, "pyproject.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(None, tmp_path)
    message = str(err.value)
    assert str(tmp_path / "pyproject.toml") in message
    for needle in needles:
        assert needle in message, message


def test_invalid_toml_and_wrong_table_type(tmp_path):
    write(tmp_path, "pyproject.toml", "[tool.backend-audit\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(None, tmp_path)
    write(tmp_path, "pyproject.toml", '[tool]\nbackend-audit = "yes"\n')
    with pytest.raises(ConfigError, match="must be a table"):
        load_config(None, tmp_path)
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(missing), tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes("fail-on = \"h\xe9\"\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(str(latin), tmp_path)


def test_parse_config_accepts_every_documented_key():
    import tomllib

    table = tomllib.loads(FULL)["tool"]["backend-audit"]
    cfg = parse_config(table, "x", Path("/base"))
    assert cfg.source == "x"


def test_exclude_and_extend_exclude_apply_to_a_scan(tmp_path):
    from test_cli import run_cli

    write(tmp_path, "pyproject.toml", '[tool.backend-audit]\nextend-exclude = ["legacy", "gen_*.py"]\n')
    write(tmp_path, "app/views.py", "x = 1\n")
    write(tmp_path, "legacy/old.py", "x = 1\n")
    write(tmp_path, "app/gen_models.py", "x = 1\n")
    write(tmp_path, "build/out.py", "x = 1\n")  # a default exclude
    import json

    proc = run_cli([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    assert json.loads(proc.stdout)["stats"]["files"] == 1
    # `exclude` replaces the defaults: build/ is scanned now, legacy/ is not
    write(tmp_path, "pyproject.toml", '[tool.backend-audit]\nexclude = ["legacy"]\n')
    proc = run_cli([".", "--format", "json", "--no-cache", "-q"], tmp_path)
    assert json.loads(proc.stdout)["stats"]["files"] == 3
