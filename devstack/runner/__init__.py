"""The local Functions runner (see runner.py)."""
from .runner import LocalRunner, load_app, resolve_settings  # noqa: F401
