#!/usr/bin/env python3
"""Benchmark backend-audit against bandit and ruff on real backend code.

Downloads pinned wheels from PyPI (Django, pretix, wagtail, django-oscar) into a cache outside the
repository (default ~/.cache/backend-audit-bench, or $BACKEND_AUDIT_BENCH_CACHE), unpacks them,
and in one run times on each tree:

* backend-audit cold (empty summary cache) and warm (second run on the same cache),
* bandit (`bandit -r -q -f json`), and ruff (`ruff check --select ALL --no-cache`),

printing wall time, peak memory (max RSS of the process tree), files per second and the ratios
the foundation issue sets as targets:

* cold backend-audit <= 1/3 of bandit's time,
* warm backend-audit <= 1.5x ruff `--select ALL --no-cache`,
* peak memory < 1.5 GiB.

Each command runs `--repeat` times (default 3) and the median is reported, because wall times on
a shared two-core machine vary by 10-20% run to run. Usage:

    python bench/run_bench.py                 # all four trees
    python bench/run_bench.py --only django   # one tree
    python bench/run_bench.py --repeat 5

bandit and ruff must be installed in the same environment (`pip install bandit ruff`).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

PINNED = {
    "django": ("Django", "5.2.19", "django"),
    "pretix": ("pretix", "2026.8.0", "pretix"),
    "wagtail": ("wagtail", "8.0.1", "wagtail"),
    "oscar": ("django-oscar", "4.2.1", "oscar"),
}


def cache_root() -> Path:
    return Path(os.environ.get("BACKEND_AUDIT_BENCH_CACHE", Path.home() / ".cache" / "backend-audit-bench"))


def fetch_tree(key: str) -> Path:
    """Download the pinned wheel once and unpack its top-level package; return the package folder."""
    dist, version, package = PINNED[key]
    root = cache_root()
    tree = root / "trees" / f"{dist}-{version}"
    if (tree / package).is_dir():
        return tree / package
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = list(wheels.glob(f"{dist.replace('-', '_')}-{version}-*.whl")) + \
        list(wheels.glob(f"{dist.lower().replace('-', '_')}-{version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", str(wheels), f"{dist}=={version}"], check=True)
        found = list(wheels.glob(f"*-{version}-*.whl"))
        found = [w for w in found if w.name.lower().startswith(dist.lower().replace("-", "_"))]
    if not found:
        raise SystemExit(f"could not download {dist}=={version}")
    tree.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[0]) as zf:
        members = [m for m in zf.namelist() if m.startswith(f"{package}/")]
        zf.extractall(tree, members)
    return tree / package


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in bytes of the process and its children, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"command failed ({code}): {' '.join(cmd)}\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss * 1024, code


def count_files(tree: Path) -> int:
    return sum(1 for _ in tree.rglob("*.py"))


def tool(name: str) -> str:
    exe = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(exe).exists():
        raise SystemExit(f"{name} is not installed in this environment: pip install {name}")
    return exe


def compile_bytecode() -> None:
    """Compile backend-audit's bytecode once, as `pip install` does for an installed package.

    bandit and ruff are timed as pip installed them. An editable install of backend-audit under
    PYTHONDONTWRITEBYTECODE=1 (a common CI and container setting) never writes its `.pyc` files
    and would recompile its own modules on every run (about 0.1 s, in the parent and again in each
    worker), which no user install does; this puts it on the same footing.
    """
    import importlib.util

    spec = importlib.util.find_spec("backend_audit")
    if spec is None or not spec.submodule_search_locations:
        return
    package = list(spec.submodule_search_locations)[0]
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    print(f"(compiled the bytecode of {package}, as pip install does)")


def bench_tree(key: str, tree: Path, repeat: int) -> dict[str, float]:
    audit = tool("backend-audit")
    files = count_files(tree)
    results: dict[str, list[tuple[float, int]]] = {"cold": [], "warm": [], "bandit": [], "ruff": []}
    env = dict(os.environ, NO_COLOR="1")
    env.pop("ANTHROPIC_API_KEY", None)
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="ba-bench-cache-") as cache:
            base = [audit, str(tree), "--format", "json", "--no-llm", "--exit-zero", "-q", "--cache-dir", cache]
            wall, rss, _ = run_measured(base, env)
            results["cold"].append((wall, rss))
            wall, rss, _ = run_measured(base, env)
            results["warm"].append((wall, rss))
        wall, rss, _ = run_measured([tool("bandit"), "-r", str(tree), "-q", "-f", "json", "-o", os.devnull], env)
        results["bandit"].append((wall, rss))
        wall, rss, _ = run_measured([tool("ruff"), "check", "--select", "ALL", "--no-cache", "--exit-zero",
                                     "--quiet", "--output-format", "json", str(tree)], env)
        results["ruff"].append((wall, rss))
    med = {k: statistics.median(w for w, _ in v) for k, v in results.items()}
    peak = {k: max(r for _, r in v) for k, v in results.items()}
    print(f"\n== {key}: {tree} ({files} Python files, median of {repeat}) ==")
    print(f"{'run':<22}{'wall s':>9}{'peak MiB':>10}{'files/s':>10}")
    for k, label in (("cold", "backend-audit cold"), ("warm", "backend-audit warm"), ("bandit", "bandit"),
                     ("ruff", "ruff --select ALL")):
        print(f"{label:<22}{med[k]:>9.2f}{peak[k] / 2**20:>10.0f}{files / med[k]:>10.0f}")
    cold_ratio = med["cold"] / med["bandit"]
    warm_ratio = med["warm"] / med["ruff"]
    peak_gib = max(peak["cold"], peak["warm"]) / 2**30
    print(f"cold / bandit = {cold_ratio:.2f}  (target <= 0.33)  {'OK' if cold_ratio <= 1 / 3 else 'MISSED'}")
    print(f"warm / ruff   = {warm_ratio:.2f}  (target <= 1.50)  {'OK' if warm_ratio <= 1.5 else 'MISSED'}")
    print(f"peak memory   = {peak_gib:.2f} GiB (target < 1.5)  {'OK' if peak_gib < 1.5 else 'MISSED'}")
    return {"cold_ratio": cold_ratio, "warm_ratio": warm_ratio, "peak_gib": peak_gib}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(PINNED), action="append", help="bench only these trees")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    keys = args.only or list(PINNED)
    failed = False
    compile_bytecode()
    for key in keys:
        tree = fetch_tree(key)
        figures = bench_tree(key, tree, max(1, args.repeat))
        if key == "django":
            failed |= figures["cold_ratio"] > 1 / 3 or figures["warm_ratio"] > 1.5 or figures["peak_gib"] >= 1.5
    print("\nDjango targets:", "MISSED" if failed else "met" if "django" in keys else "not measured")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
