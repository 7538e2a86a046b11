"""Per-user vector adjustment: all sessions in one batched optimisation vs one session at a time.

    .venv/bin/python -m bench.improvement [--quick] [--sessions N] [--metric M]
        [--aggregation A] [--json out.json]

Generates sessions over random 384-d unit vectors (10 shown objects of 1-3 parts each, 1-2
clicks, a distinct user per session, so no (user, object) is shared and both must agree), then
times ``es_core.improvement.adjuster.adjust`` against ``adjust_one_by_one`` on the same input
and reports sessions/s of each, the speed ratio and the largest absolute difference of the
adjusted vectors (OK when under 1e-4, else MISMATCH). No stack, no database: in-process only.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import get_args

import numpy as np
import numpy.typing as npt

from bench.common import Row, base_parser, report
from es_core.domain import Aggregation, Metric
from es_core.improvement.adjuster import (
    AdjusterSettings,
    Key,
    SessionExample,
    adjust,
    adjust_one_by_one,
)

DIM = 384
SHOWN = 10
TOLERANCE = 1e-4


def make_sessions(
    n: int, dim: int = DIM, seed: int = 0
) -> tuple[list[SessionExample], dict[Key, npt.NDArray[np.float32]]]:
    rng = np.random.default_rng(seed)

    def unit(*shape: int) -> npt.NDArray[np.float32]:
        v = rng.standard_normal(shape).astype(np.float32)
        out: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=-1, keepdims=True)
        return out

    sessions: list[SessionExample] = []
    items: dict[Key, npt.NDArray[np.float32]] = {}
    for s in range(n):
        user = f"user-{s}"
        shown = [f"object-{int(o)}" for o in rng.choice(10 * SHOWN, SHOWN, replace=False)]
        for object_id in shown:
            items[(user, object_id)] = unit(int(rng.integers(1, 4)), dim)
        n_clicked = int(rng.integers(1, 3))
        sessions.append(SessionExample(user, unit(dim), shown[:n_clicked], shown[n_clicked:]))
    return sessions, items


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, help="sessions (default 2000; --quick 200)")
    parser.add_argument("--metric", choices=get_args(Metric), default="cosine")
    parser.add_argument("--aggregation", choices=get_args(Aggregation), default="min")
    args = parser.parse_args()
    n = args.sessions or (200 if args.quick else 2000)
    metric: Metric = args.metric
    aggregation: Aggregation = args.aggregation
    settings = AdjusterSettings()

    sessions, items = make_sessions(n)
    parts = sum(v.shape[0] for v in items.values())
    print(
        f"{n} sessions, {len(items)} (user, object) copies, {parts} part vectors of {DIM}-d; "
        f"{metric}/{aggregation}, {settings}"
    )
    # Torch's one-time start-up (the first optimiser costs ~2 s) is paid here, not timed.
    adjust(sessions[:2], items, metric=metric, aggregation=aggregation, settings=settings)

    started = time.perf_counter()
    batched = adjust(sessions, items, metric=metric, aggregation=aggregation, settings=settings)
    batched_s = time.perf_counter() - started
    started = time.perf_counter()
    looped = adjust_one_by_one(
        sessions, items, metric=metric, aggregation=aggregation, settings=settings
    )
    looped_s = time.perf_counter() - started

    same_keys = list(batched) == list(looped)
    max_diff = (
        max(float(np.abs(batched[k] - looped[k]).max()) for k in batched)
        if same_keys
        else float("inf")
    )
    status = "OK" if same_keys and max_diff <= TOLERANCE else "MISMATCH"
    report(
        "improvement: batched adjust vs one session at a time",
        [
            Row("sessions/s", n / batched_s, n / looped_s, "one_by_one"),
            Row("seconds, batched", batched_s),
            Row("seconds, one_by_one", looped_s),
            Row("max |batched - one_by_one|", max_diff),
        ],
        args.json,
        {
            "sessions": n,
            "dim": DIM,
            "shown_per_session": SHOWN,
            "part_vectors": parts,
            "metric": metric,
            "aggregation": aggregation,
            "settings": asdict(settings),
            "tolerance": TOLERANCE,
            "status": status,
        },
    )
    print(f"{status}: max abs difference {max_diff:.2e} (tolerance {TOLERANCE:g})")


if __name__ == "__main__":
    main()
