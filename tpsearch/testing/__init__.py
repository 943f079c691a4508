"""What tests and benchmarks share, outside the product's rooms (as `optuna.testing` is): `search` (options
builders, `tpsearch run` in a process held at chosen moments, the fault suite's cases), `dashboards` (synthetic
studies, the optuna-dashboard server) and `trainers` (faults a trial's model raises, image folders). Nothing in the
product imports it.
"""
