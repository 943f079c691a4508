"""The pictures of `tpsearch explain`: each image with its map laid over it as a PNG, and one page of them all.

The page is self-contained like every page here: each image, its map and the overlay are drawn by Plotly from the
pixels themselves, so it never points at the PNGs beside it (they are for slides and reports).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from tpsearch._files import atomic_path, atomic_write
from tpsearch.dashboards._figures import esc as fig_esc
from tpsearch.dashboards._figures import titled
from tpsearch.dashboards._page import _card, _result_page, esc

COLORSCALE = "Inferno"
OVERLAY_SIDE = 256   # an overlay is upscaled (whole pixels, no smoothing) to at least this many pixels a side
OPACITY = 0.65       # of the map where it is 1; where it is 0 the image shows through untouched


def _lut() -> np.ndarray:
    """The colour scale as 256 RGB rows, so that colouring a map is one index per pixel."""
    colours = sample_colorscale(COLORSCALE, list(np.linspace(0, 1, 256)), colortype="tuple")
    return np.asarray(colours, dtype=np.float64) * (255 if max(max(c) for c in colours) <= 1 else 1)


def rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] as RGB: grey for one channel (or any count but three: their mean)."""
    if image.shape[2] == 3:
        return image.astype(np.uint8)
    grey = image.mean(axis=2).round().astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def overlay(image: np.ndarray, heat: np.ndarray, *, scale: int = 1) -> np.ndarray:
    """The map coloured and blended over the image in proportion to its value; uint8 [H s, W s, 3]."""
    base = rgb(image).astype(np.float64)
    colour = _lut()[np.clip((heat * 255).round(), 0, 255).astype(np.int64)]
    alpha = OPACITY * np.clip(heat, 0, 1)[:, :, None]
    blended = ((1 - alpha) * base + alpha * colour).round().clip(0, 255).astype(np.uint8)
    return blended.repeat(scale, axis=0).repeat(scale, axis=1)


def png_paths(page: str | os.PathLike, count: int) -> list[Path]:
    """Where the overlays of a page go: beside it, named after it (maps.html: maps_0.png, maps_1.png, ...)."""
    page = Path(page)
    return [page.with_name(f"{page.stem}_{i}.png") for i in range(count)]


def write_overlays(result: Any, page: str | os.PathLike) -> list[Path]:
    """One PNG per explanation of `result` (`tpsearch.checkpoints.ExplainResult`) beside `page`, each written
    atomically; returns their paths in the result's order."""
    from PIL import Image

    paths = png_paths(page, len(result.explanations))
    for e, path in zip(result.explanations, paths):
        side = max(e.image.shape[:2])
        picture = Image.fromarray(overlay(e.image, e.map, scale=max(1, -(-OVERLAY_SIDE // side))))
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
    return paths


def _caption(result: Any, e: Any) -> str:
    names = result.classes
    text = f"{e.source}: predicted {names[e.predicted]} ({e.probability:.1%})"
    if e.label is not None:
        text += f", true {names[e.label]}"
    if e.target != e.predicted:
        text += f"; map of {names[e.target]} ({e.target_probability:.1%})"
    return text


def explanation_figure(result: Any, e: Any) -> go.Figure:
    """One image, its map and the overlay side by side; hovering a pixel gives its value in the map."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("image", f"{result.method} map", "overlay"),
                        horizontal_spacing=0.04)
    fig.add_trace(go.Image(z=rgb(e.image), hovertemplate="(%{x}, %{y})<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=e.map, colorscale=COLORSCALE, zmin=0, zmax=1, showscale=False,
                             hovertemplate="(%{x}, %{y}): %{z:.2f}<extra></extra>"), row=1, col=2)
    fig.add_trace(go.Image(z=overlay(e.image, e.map), hovertemplate="(%{x}, %{y})<extra></extra>"), row=1, col=3)
    for col in (1, 2, 3):
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain", row=1, col=col)
        # Square pixels, row 0 at the top, as the images are drawn.
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                         scaleanchor=f"x{'' if col == 1 else col}", constrain="domain", row=1, col=col)
    fig.update_layout(title=titled(fig_esc(_caption(result, e))), template="plotly_white", height=340,
                      margin=dict(l=10, r=10, t=90, b=10))
    return fig


def explanation_html(result: Any) -> str:
    """The page of one `tpsearch explain` result: a card per image, in the order given."""
    settings = (f"{result.samples} noisy copies, noise {result.noise:g} of each input's range, seed {result.seed}"
                if result.method == "smoothgrad" else "the plain input gradient")
    facts = [
        f'<span class="w">checkpoint <b>{esc(result.checkpoint)}</b></span>',
        f"<span>data set {esc(result.dataset)}</span>",
        f"<span>method <b>{esc(result.method)}</b>: {esc(settings)}</span>",
        "<span>map: |gradient| of the class logit, clipped at its 99th percentile, summed over channels, "
        "scaled to 0..1</span>"]
    cards = "".join(_card(explanation_figure(result, e), f"image-{i}") for i, e in enumerate(result.explanations))
    return _result_page("explain", "Explanations", result.checkpoint, f'<div class="grid">{cards}</div>', facts)


def write_explanation(result: Any, path: str | os.PathLike) -> Path:
    """Write the page of an explain result (`tpsearch.checkpoints.explain(...)`) to `path` atomically."""
    return atomic_write(path, explanation_html(result))


def captions(result: Any) -> Sequence[str]:
    return [_caption(result, e) for e in result.explanations]
