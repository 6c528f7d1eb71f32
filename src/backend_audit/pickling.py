"""Compact pickles for the many small dataclasses that summaries and facts are made of.

A cold scan pickles every file's summary in a worker and unpickles it in the parent (and the
cache stores the same bytes). A plain dataclass pickles as its class plus a `__dict__` with
every field name, and unpickling rebuilds that dict and copies it into the new object. Pickled
as a constructor call with the field values in order, the same objects take about 40% fewer
bytes and half the time to load (measured on Django's summaries).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import TypeVar

T = TypeVar("T", bound=type)


def positional_pickle(cls: T) -> T:
    """Class decorator for a dataclass whose `__init__` takes every field positionally."""
    names = tuple(f.name for f in fields(cls))
    values = attrgetter(*names)

    def __reduce__(self):  # noqa: N807 - the pickle protocol's name
        got = values(self)
        return cls, (got if len(names) > 1 else (got,))

    cls.__reduce__ = __reduce__
    return cls
