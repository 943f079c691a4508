"""`python -m tpsearch ...` is the `tpsearch` command."""
from tpsearch.search.cli import main

raise SystemExit(main())
