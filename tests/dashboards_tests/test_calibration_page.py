"""The `tpsearch calibrate` page: a self-contained scatter with the correlations, text from the user escaped."""
from __future__ import annotations

from tpsearch import dashboards


def _result(spearman: float | None) -> dict:
    rows = [{"index": i, "source": "<script>alert(1)</script>" if i == 0 else "sampled",
             "arch": {"layers": 1, "blocks": [1], "channels": 8 + i}, "params": 4_000 + 1_000 * i,
             "hparams": {"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "batch_size": 128,
                         "label_smoothing": 0.0},
             "low_accuracy": 0.2 + 0.1 * i, "high_accuracy": 0.5 + 0.1 * i} for i in range(4)]
    return {"space": "resnet_5m", "dataset": "synthetic-hard", "device": "cpu", "k": 4, "top_k": 1,
            "low": {"epochs": 1, "images": 100}, "high": {"epochs": 2, "images": 200}, "spearman": spearman,
            "kendall": spearman, "topk_overlap": 1.0, "low_s": 1.5, "high_s": 3.0, "architectures": rows}


def test_page_has_the_scatter_and_the_correlations(tmp_path):
    page = dashboards.write_calibration(_result(1.0), tmp_path / "c.html")
    html = page.read_text()
    assert "Plotly.newPlot" in html and "<script src=" not in html  # plotly.js inside: opens offline
    assert "Spearman 1.00, Kendall 1.00, top-1 overlap 100%" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_constant_ranking_reads_not_available():
    # Plotly's JSON writes the slash of "n/a" as \u002f.
    assert "Spearman n\\u002fa, Kendall n\\u002fa" in dashboards.calibration_html(_result(None))
