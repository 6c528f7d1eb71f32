"""backend-audit: static code review and performance audit for Python backends."""

__version__ = "0.1.0"
