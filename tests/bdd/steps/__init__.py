"""Step definitions of features/, one module per area (loaded by tests/conftest.py)."""
