"""`[tool.staging]`: the user's contract. `model` is its shape; `load` reads it."""
