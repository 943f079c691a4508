"""The names of the records a search writes on its study that readers other than the search read."""
BUDGET_ATTR = "training_budget"  # the study's user attribute holding the search's `Budget.record()`: unit and rungs
