"""Search strategies measured: a table of real learning curves and a simulator that replays tpsearch's own
searcher and scheduler over it (`tpsearch simulate`)."""
from tpsearch.search.simulate._table import DEFAULT_TABLE, Point, Table

__all__ = ["DEFAULT_TABLE", "Point", "Table"]
