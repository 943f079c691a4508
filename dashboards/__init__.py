"""Plotly figures and self-contained pages built from a study."""
