import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: filled by test_fixture_scores, printed at the end of every run that computed it
FIXTURE_SCORES: dict = {}


def pytest_terminal_summary(terminalreporter):
    if FIXTURE_SCORES:
        from fixture_scoring import THRESHOLDS, format_table

        terminalreporter.section("fixture accuracy (precision / recall per category)")
        terminalreporter.write_line(format_table(FIXTURE_SCORES))
        terminalreporter.write_line("thresholds: " + ", ".join(
            f"{c} >= {p:.2f}/{r:.2f}" for c, (p, r) in sorted(THRESHOLDS.items())))
