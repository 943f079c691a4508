"""`python -m tpsearch ...` is the `tpsearch` command."""
from tpsearch._cli import main

raise SystemExit(main())
