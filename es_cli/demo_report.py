"""What `es demo` measured: a table on the terminal, a bar chart (PNG) and the figures as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from es_harness.lifecycle import METRICS, NAMES, relative_change

CHART_NAME = "metrics.png"
JSON_NAME = "metrics.json"


@dataclass
class DemoFigures:
    """Dev-query quality through the Search API before the feedback loop and after the switch."""

    dataset: str
    dev_rule: str
    sizes: dict[str, int]  # "docs", "train", "dev"
    before: dict[str, float]  # METRICS -> value, on the blue collection before
    after: dict[str, float]  # the same, on the blue collection after the switch
    # The same after the ranking step (fusion weights learned from the clicks), before the
    # fine-tuning; equal to ``before`` when the ranking gate kept vector ranking.
    ranked: dict[str, float] = field(default_factory=dict)
    # The ranking fit task's result: the learned spec, its held-out figures, whether it went live.
    ranking: dict[str, Any] = field(default_factory=dict)
    model_before: str = ""
    model_after: str = ""
    collection_before: str = ""
    collection_after: str = ""
    # How the new model became blue: "deploy_as_blue", "explicit" (the gate passed but the
    # server did not promote), "gate overridden", or "not promoted" (gate respected).
    route: str = ""
    gate: dict[str, Any] = field(default_factory=dict)
    steps_seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def changes(self) -> dict[str, float | None]:
        """Relative change after / before in percent; None when the before figure is 0."""
        out: dict[str, float | None] = {}
        for m in METRICS:
            change = relative_change(self.after[m], self.before[m])
            out[m] = None if math.isnan(change) else change
        return out


def table(figures: DemoFigures) -> str:
    """Before, after the ranking step, after fine-tuning and the overall relative change of
    each measure, one line each."""
    ranked = figures.ranked or figures.before
    lines = [f"{'dev queries':<12} {'before':>8} {'ranked':>8} {'after':>8} {'change':>9}"]
    for m, change in figures.changes().items():
        shown = "-" if change is None else f"{change:+.1f}%"
        lines.append(
            f"{NAMES[m]:<12} {figures.before[m]:>8.4f} {ranked[m]:>8.4f}"
            f" {figures.after[m]:>8.4f} {shown:>9}"
        )
    return "\n".join(lines)


def write_json(figures: DemoFigures, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / JSON_NAME
    data = {**asdict(figures), "change_percent": figures.changes()}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def write_chart(figures: DemoFigures, directory: Path) -> Path:
    """Grouped bars, before and after, for each measure (NDCG@10 first), values on the bars."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHART_NAME
    labels = [NAMES[m] for m in METRICS]
    width = 0.27
    fig, ax = plt.subplots(figsize=(8.5, 4.5), dpi=120)
    try:
        for offset, name, values, colour in (
            (-width, "before (vector ranking)", figures.before, "#9aa5b1"),
            (0.0, "ranking learned from clicks", figures.ranked or figures.before, "#f0a030"),
            (width, "after fine-tuning", figures.after, "#2f7ed8"),
        ):
            xs = [i + offset for i in range(len(METRICS))]
            bars = ax.bar(xs, [values[m] for m in METRICS], width, label=name, color=colour)
            ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=9)
        ax.set_xticks(range(len(METRICS)), labels)
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("mean over dev queries")
        ax.set_title(
            f"{figures.dataset}: {figures.sizes.get('dev', 0)} queries kept out of training\n"
            f"before feedback, after the ranking step, after fine-tuning ({figures.route})",
            fontsize=10,
        )
        ax.legend(loc="upper left")
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
