"""What comparison curves are drawn against; plain data, so the command line lists it without loading pandas."""

X_AXES = {"trained": "trained trials", "seconds": "training seconds",
          "trial": "trial (Optuna's number: infeasible draws count too)"}
