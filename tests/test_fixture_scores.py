"""Accuracy on the labeled fixtures, per category, enforced at the thresholds in fixture_scoring."""

from __future__ import annotations

import pytest

from backend_audit.analyzers import all_analyzers
from fixture_scoring import THRESHOLDS, format_table, score_all


@pytest.fixture(scope="module")
def scores():
    import conftest

    s = score_all()
    conftest.FIXTURE_SCORES.update(s)
    print("\n" + format_table(s))
    return s


@pytest.mark.parametrize("category", sorted(THRESHOLDS))
def test_category_meets_threshold(scores, category):
    active = {a.category for a in all_analyzers()}
    if category not in active:
        pytest.skip(f"no analyzer for {category} is registered yet")
    s = scores[category]
    min_p, min_r = THRESHOLDS[category]
    assert s.tp > 0, f"{category}: no labeled true case was found at all"
    assert s.near_misses >= s.tp + s.fn, f"{category}: fixtures need at least as many near misses as true cases"
    assert s.precision >= min_p, f"{category}: precision {s.precision:.3f} < {min_p}; false positives: {s.false_positives}"
    assert s.recall >= min_r, f"{category}: recall {s.recall:.3f} < {min_r}; missed: {s.false_negatives}"
