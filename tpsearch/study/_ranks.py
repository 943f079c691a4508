"""How far two rankings of the same items agree: average ranks, Spearman's rho and Kendall's tau-b with their 95%
intervals, and the overlap of their best k. What `tpsearch calibrate` measures between two fidelities and its page
draws; and a search's own agreement between rungs."""
from __future__ import annotations

import math
from typing import Any, Sequence

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: two-sided 95% intervals


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span (as `scipy.stats.rankdata`)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for j in range(start, end + 1):
            ranks[order[j]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: the Pearson correlation of the average ranks; None when either side is constant."""
    _same_length(a, b)
    ra, rb = average_ranks(a), average_ranks(b)
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va, vb = sum((x - ma) ** 2 for x in ra), sum((y - mb) ** 2 for y in rb)
    return None if va == 0 or vb == 0 else _clip(cov / math.sqrt(va * vb))


def kendall(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Kendall's tau-b, which corrects for ties: (concordant - discordant) / sqrt((n0 - ties_a) (n0 - ties_b)) over
    all n0 pairs; None when either side is constant. Quadratic: meant for tens of configurations, not thousands."""
    _same_length(a, b)
    concordant = discordant = ties_a = ties_b = 0
    n = len(a)
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0:
                ties_a += 1
            if db == 0:
                ties_b += 1
            if da and db:
                if (da > 0) == (db > 0):
                    concordant += 1
                else:
                    discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_a) * (pairs - ties_b))
    return None if denominator == 0 else _clip((concordant - discordant) / denominator)


def topk_overlap(a: Sequence[float], b: Sequence[float], k: int) -> float:
    """The share of the `k` best by `a` that are also among the `k` best by `b` (higher is better). A tie at the
    border is broken by position, the earlier configuration first, the same way on both sides."""
    _same_length(a, b)
    if not 1 <= k <= len(a):
        raise ValueError(f"k must be in 1..{len(a)}, but got {k}")

    def best(v: Sequence[float]) -> set[int]:
        return set(sorted(range(len(v)), key=lambda i: (-v[i], i))[:k])

    return len(best(a) & best(b)) / k


def interval(r: float | None, n: int, statistic: str) -> list[float] | None:
    """A 95% interval of a rank correlation `r` ("spearman" or "kendall") of `n` pairs, by Fisher's z: atanh(r) is
    close to normal with standard error sqrt((1 + r^2 / 2) / (n - 3)) for Spearman's rho (Bonett & Wright 2000) and
    sqrt(0.437 / (n - 4)) for Kendall's tau (Fieller, Hartley & Pearson 1957). None for no correlation or too few
    pairs (4 for rho, 5 for tau). A perfect correlation (+-1) gets the degenerate interval [r, r]: z is infinite."""
    if statistic not in ("spearman", "kendall"):
        raise ValueError(f"statistic must be 'spearman' or 'kendall', but got {statistic!r}")
    fewest = 4 if statistic == "spearman" else 5
    if r is None or n < fewest:
        return None
    if abs(r) == 1.0:
        return [r, r]
    se = math.sqrt((1 + r * r / 2) / (n - 3)) if statistic == "spearman" else math.sqrt(0.437 / (n - 4))
    z = math.atanh(r)
    return [round(math.tanh(z - Z95 * se), 4), round(math.tanh(z + Z95 * se), 4)]


def agreement(a: Sequence[float], b: Sequence[float], k: int) -> dict[str, Any]:
    """How far two rankings of the same items agree: Spearman's rho and Kendall's tau-b, each with its 95%
    interval, and the overlap of their best `k`."""
    rho, tau = spearman(a, b), kendall(a, b)
    return {"spearman": rho, "spearman_ci": interval(rho, len(a), "spearman"),
            "kendall": tau, "kendall_ci": interval(tau, len(a), "kendall"), "topk_overlap": topk_overlap(a, b, k)}


def _same_length(a: Sequence[float], b: Sequence[float]) -> None:
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two rankings of the same 2 or more items, but got {len(a)} and {len(b)}")


def _clip(r: float) -> float:
    return max(-1.0, min(1.0, r))  # rounding can land a perfect correlation at 1.0000000000000002
