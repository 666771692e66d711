"""`nox -s bench`: time to a verdict against what a team would otherwise run (issue 7)."""
