"""Latency-against-load plots for docs/benchmarks.md (matplotlib, requirements/bench.txt).

    plot_latency("docs/img/http-latency.png", "GET /api/auth/me through nginx",
                 "connections", {"collabry p50": [(16, 4.1), (64, 9.0)], "express p50": [...]})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def plot_latency(
    path: str | Path,
    title: str,
    load_label: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    y_label: str = "latency (ms)",
    log_y: bool = False,
) -> Path:
    """One line per series (load, milliseconds); writes a PNG and returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, points in series.items():
        xs, ys = zip(*sorted(points), strict=True) if points else ((), ())
        style = "--" if "peer" in name or "express" in name or "node" in name else "-"
        ax.plot(xs, ys, style, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel(load_label)
    ax.set_ylabel(y_label)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
