"""Integrations with the outside world: git (--diff-base) and GitHub (the PR comment)."""
