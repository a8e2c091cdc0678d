"""Matplotlib figures for the run report, each returned as a base64 PNG data URI.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas, so no
pyplot state or display is involved and the engine may call this from any thread.
"""

from __future__ import annotations

import base64
import io
from collections import Counter

import numpy as np
from matplotlib.figure import Figure

from pipeline.report.signals import Threshold

KEPT_COLOR = "#2a7ab0"
REJECTED_COLOR = "#d0573b"
DPI = 100


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def label_bars(ax, bars, values: list[float], fmt: str = "{:,.0f}") -> None:
    for bar, value in zip(bars, values):
        ax.annotate(fmt.format(value), (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)


def funnel(stages: list[dict]) -> str:
    """Plot documents and megabytes left after each stage, the first bar being the read input."""
    names = ["records in" if stages[0]["stage"] == "read" else "input"] + [stage["stage"] for stage in stages]
    documents = [stages[0]["documents_in"]] + [stage["documents_out"] for stage in stages]
    megabytes = [stages[0]["bytes_in"] / 1e6] + [stage["bytes_out"] / 1e6 for stage in stages]
    fig = Figure(figsize=(10, 0.45 * len(names) + 1.2))
    left, right = fig.subplots(1, 2, sharey=True)
    positions = np.arange(len(names))[::-1]
    label_bars(left, left.barh(positions, documents, color=KEPT_COLOR), documents)
    label_bars(right, right.barh(positions, megabytes, color="#5b9e5f"), megabytes, "{:,.2f}")
    left.set_yticks(positions, names)
    left.set_title("documents after each stage")
    right.set_title("text MB after each stage")
    for ax in (left, right):
        ax.margins(x=0.2)
    return to_data_uri(fig)


def horizontal_counts(labels: list[str], counts: list[int], title: str, color: str) -> str:
    fig = Figure(figsize=(8, 0.32 * len(labels) + 1.0))
    ax = fig.subplots()
    positions = np.arange(len(labels))[::-1]
    label_bars(ax, ax.barh(positions, counts, color=color), counts)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_title(title)
    ax.margins(x=0.15)
    return to_data_uri(fig)


def drops(stages: list[dict]) -> str:
    """Plot the dropped documents per `stage: reason`, largest first."""
    items = [(f"{stage['stage']}: {reason}", count) for stage in stages for reason, count in stage.get("dropped", {}).items()]
    items.sort(key=lambda item: -item[1])
    return horizontal_counts([label for label, _ in items], [count for _, count in items], "dropped documents by reason", REJECTED_COLOR)


def histogram(column: str, kept: np.ndarray, rejected: np.ndarray, thresholds: list[Threshold]) -> str:
    """Plot kept and rejected values of one score column stacked, with each threshold as a line.

    The x range covers the 0.5th to 99.5th percentile and every threshold within three times
    that span. Values outside the range are counted in the edge bins. Counts spanning orders of magnitude get a log x axis.
    """
    low, high, log_scale = histogram_range(np.concatenate([kept, rejected]), thresholds)
    shown = [t for t in thresholds if low <= t.value <= high]
    bins = np.geomspace(low, high, 41) if log_scale else np.linspace(low, high, 41)
    fig = Figure(figsize=(5.2, 3.2))
    ax = fig.subplots()
    ax.hist([np.clip(kept, low, high), np.clip(rejected, low, high)], bins=bins, stacked=True,
            color=[KEPT_COLOR, REJECTED_COLOR], label=[f"kept ({len(kept):,})", f"rejected ({len(rejected):,})"])
    for threshold in thresholds:
        side = "min" if threshold.is_minimum else "max"
        label = f"{side} {threshold.value:g} ({threshold.key})"
        if threshold in shown:
            ax.axvline(threshold.value, color="black", linestyle="--", linewidth=1.2, label=label)
        else:
            ax.plot([], [], " ", label=f"{label}, off scale")
    if log_scale:
        ax.set_xscale("log")
    ax.set_title(column)
    ax.set_ylabel("documents")
    ax.legend(fontsize=7)
    return to_data_uri(fig)


def histogram_range(values: np.ndarray, thresholds: list[Threshold]) -> tuple[float, float, bool]:
    """Return (low, high, log_scale) for a histogram of `values` that also shows nearby thresholds."""
    if len(values) == 0:
        low, high = 0.0, 1.0
    else:
        low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    span = max(high - low, 1e-9)
    for threshold in thresholds:
        if low - 3 * span <= threshold.value <= high + 3 * span:
            low, high = min(low, threshold.value), max(high, threshold.value)
    if high <= low:
        high = low + 1.0
    median = float(np.median(values)) if len(values) else 0.0
    log_scale = low >= 0 and high >= 100 and high > 20 * max(median, 1.0)
    if log_scale:
        low = max(low, 1.0)
    return low, high, log_scale


def top_counts(counts: Counter, title: str, color: str, top: int = 20) -> str:
    items = counts.most_common(top)
    return horizontal_counts([str(label) for label, _ in items], [count for _, count in items], title, color)


def languages(kept: Counter, rejected: Counter, top: int = 20) -> str:
    """Plot kept and rejected documents per language for the `top` languages by total."""
    total = kept + rejected
    names = [name for name, _ in total.most_common(top)]
    fig = Figure(figsize=(8, 0.32 * len(names) + 1.0))
    ax = fig.subplots()
    positions = np.arange(len(names))[::-1]
    kept_counts = [kept[name] for name in names]
    ax.barh(positions, kept_counts, color=KEPT_COLOR, label="kept")
    ax.barh(positions, [rejected[name] for name in names], left=kept_counts, color=REJECTED_COLOR, label="rejected")
    ax.set_yticks(positions, names, fontsize=8)
    ax.set_title("documents per language")
    ax.legend(fontsize=8)
    return to_data_uri(fig)


def cluster_sizes(sizes: Counter) -> str:
    """Plot how many dedup clusters have each size (documents per cluster), log-scaled counts."""
    by_size = Counter(sizes.values())
    xs = sorted(by_size)
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    positions = np.arange(len(xs))
    ax.bar(positions, [by_size[x] for x in xs], color="#7d5ba6")
    ax.set_xticks(positions, [str(x) for x in xs])
    ax.set_yscale("log")
    ax.set_xlabel("documents in cluster")
    ax.set_ylabel("clusters")
    ax.set_title("dedup cluster sizes")
    return to_data_uri(fig)


def token_shards(shards: list[dict]) -> str:
    colors = {"train": KEPT_COLOR, "val": "#e0a030"}
    names = [shard.get("file", "?") for shard in shards]
    tokens = [shard.get("tokens", 0) for shard in shards]
    fig = Figure(figsize=(8, 0.32 * len(names) + 1.0))
    ax = fig.subplots()
    positions = np.arange(len(names))[::-1]
    bars = ax.barh(positions, tokens, color=[colors.get(shard.get("split"), "gray") for shard in shards])
    label_bars(ax, bars, tokens)
    ax.set_yticks(positions, names, fontsize=8)
    ax.set_title("tokens per shard (blue: train, orange: val)")
    ax.margins(x=0.15)
    return to_data_uri(fig)


def throughput(stages: list[dict]) -> str:
    """Plot documents_in per second of stage time for each stage that processed documents in measurable time."""
    timed = [stage for stage in stages if stage.get("seconds", 0) > 0 and stage["documents_in"] > 0]
    rates = [stage["documents_in"] / stage["seconds"] for stage in timed]
    return horizontal_counts([stage["stage"] for stage in timed], rates,
                             "documents per second of stage time", "#5b9e5f")
