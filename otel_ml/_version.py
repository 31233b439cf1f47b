"""The package version, in one place: pyproject reads it, and spans carry it as
the instrumentation scope version without importing ``importlib.metadata``."""

__version__ = "0.2.0.dev0"
