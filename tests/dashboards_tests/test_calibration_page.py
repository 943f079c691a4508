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


def test_page_shows_the_rungs_and_the_noise_ceiling():
    result = _result(0.8)
    for row in result["architectures"]:
        row["low_rungs"] = [0.1 + 0.05 * row["index"], 0.15 + 0.05 * row["index"]]
        row["ceiling_accuracy"] = row["high_accuracy"] - 0.01
    result["low"].update(epochs=4, rung_epochs=[1, 3])
    stats = {"spearman": 0.6, "spearman_ci": [0.1, 0.85], "kendall": 0.5, "kendall_ci": [0.05, 0.8],
             "topk_overlap": 1.0}
    result.update(spearman_ci=[0.4, 0.95], kendall_ci=[0.3, 0.9],
                  rungs=[{"epochs": 1, "images": 100, **stats}, {"epochs": 3, "images": 300, **stats}],
                  ceiling={"seed": 4, "seconds": 3.0, **stats, "spearman": 0.9, "kendall": 0.8})
    html = dashboards.calibration_html(result)
    assert "Agreement with the high fidelity at the search" in html and "Spearman ceiling 0.90" in html
    assert "<th>rung 1</th><th>rung 3</th>" in html and "<th>high again</th>" in html
    assert "Plotly.newPlot" in html and html.count("Plotly.newPlot") == 2
