"""The search driver: CLI, Ray Tune wiring, Optuna sampling, the parameter budget, storage and export."""
from search._errors import UsageError

__all__ = ["UsageError"]
