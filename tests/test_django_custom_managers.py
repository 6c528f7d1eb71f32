"""A model whose `objects` is a custom manager built with `Manager.from_queryset(QS)`: the index
resolves `Employee.objects.get` through the attribute's value to the manager instance, and every
analyzer must still know the model behind it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from backend_audit.catalog import load_catalog
from backend_audit.engine import ScanOptions, scan

MODELS = """
from django.db import models


class EmployeeQuerySet(models.QuerySet):
    def active(self):
        return self.filter(left_on__isnull=True)


class EmployeeManager(models.Manager.from_queryset(EmployeeQuerySet)):
    def get_queryset(self):
        return super().get_queryset().select_related("manager")


class Employee(models.Model):
    manager = models.ForeignKey("self", null=True, on_delete=models.SET_NULL)
    left_on = models.DateField(null=True, db_index=True)
    badge = models.CharField(max_length=12)
    objects = EmployeeManager()
"""

VIEWS = """
from .models import Employee


async def badge_lookup(request, badge):
    return Employee.objects.get(badge=badge)


async def active_count(request):
    return await Employee.objects.active().acount()


def managers(request):
    return [e.manager.badge for e in Employee.objects.all()]
"""


def scan_project(tmp_path: Path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "__init__.py").write_text("")
    (tmp_path / "hr" / "models.py").write_text(textwrap.dedent(MODELS))
    (tmp_path / "hr" / "views.py").write_text(textwrap.dedent(VIEWS))
    result = scan(ScanOptions(paths=[str(tmp_path)], use_cache=False, jobs=1), load_catalog())
    return {(f.path, f.line, f.rule) for f in result.findings}


def test_queries_through_a_custom_manager_are_checked(tmp_path):
    found = scan_project(tmp_path)
    assert ("hr/views.py", 6, "BA201") in found  # badge has no index
    assert ("hr/views.py", 6, "BA404") in found  # sync ORM in a coroutine
    assert not any(line == 10 for _, line, _ in found)  # the async ORM API is fine
    # the manager's get_queryset() select_related("manager") loads the relation for every row
    assert not any(rule.startswith("BA1") for _, _, rule in found)
