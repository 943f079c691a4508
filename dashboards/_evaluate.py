"""The page of `tpsearch evaluate`: a checkpoint's confusion matrix and accuracy per class."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tpsearch._files import atomic_write
from tpsearch.dashboards import _figures as F
from tpsearch.dashboards._page import _card, _header, _page, esc


def evaluation_html(result: dict[str, Any]) -> str:
    """The page of one `tpsearch evaluate` result: its figures, the confusion matrix first."""
    classes = result["classes"]
    per_class = result["per_class_accuracy"]
    recorded = result.get("recorded") or {}
    parts = [f"<span>data set: <b>{esc(result['dataset'])}</b> ({esc(result['split'])}, "
             f"{int(result['images']):,} images)</span>",
             f"<span>test accuracy: <b>{result['test_accuracy']:.2%}</b></span>"]
    if result.get("top5_accuracy") is not None:
        parts.append(f"<span>top-5: <b>{result['top5_accuracy']:.2%}</b></span>")
    if recorded.get("val_accuracy") is not None:
        parts.append(f"<span>validation accuracy at export: {recorded['val_accuracy']:.2%}</span>")
    if recorded.get("params") is not None:
        parts.append(f"<span>parameters: {int(recorded['params']):,}</span>")
    origin = (f"study {result['study']}, trial {result['trial']}" if result.get("study") is not None
              else str(result["checkpoint"]))
    body = (_header(f"Evaluation of {result['checkpoint']}",
                    f'<span class="w">{esc(origin)}</span><span>space {esc(result["space"])}</span>'
                    f'<span class="w">arch {esc(result["arch"])}</span>', "".join(parts))
            + f'<div class="grid">{_card(F.confusion_matrix(result["confusion_matrix"], classes), "confusion")}'
            f'{_card(F.per_class_accuracy(classes, [per_class[c] for c in classes]), "per-class")}</div>')
    return _page(f"tpsearch evaluate: {result['checkpoint']}", body)


def write_evaluation(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the page of an evaluation result (see `search.evaluate_checkpoint`) to `path` atomically."""
    return atomic_write(path, evaluation_html(result))
