"""A gallery of Temporal + Postgres app shapes, each with its own pyproject.toml and no
`[tool.staging]`: `staging init` writes it (see shapes.py and test_gallery.py)."""
