"""A ranking spec: which retrievers rank a search, how their scores fuse, and which business
signals (popularity, recency) boost items. Checked once at the edge, stored as JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument

Method = Literal["vector", "lexical", "hybrid"]
Fusion = Literal["weighted", "rrf"]
BoostFunction = Literal["log", "linear", "decay"]
SignalKind = Literal["number", "timestamp"]

METHODS: tuple[Method, ...] = ("vector", "lexical", "hybrid")
FUSIONS: tuple[Fusion, ...] = ("weighted", "rrf")
BOOST_FUNCTIONS: dict[SignalKind, tuple[BoostFunction, ...]] = {
    "number": ("log", "linear"),
    "timestamp": ("decay",),
}
# Weights when a spec leaves them unset: the dense side leads in weighted fusion (Weaviate's
# default alpha is 0.75 too); reciprocal-rank fusion weighs both lists alike.
DEFAULT_WEIGHTS: dict[Fusion, tuple[float, float]] = {"weighted": (0.75, 0.25), "rrf": (1.0, 1.0)}
DEFAULT_RRF_K = 60.0
MAX_BOOSTS = 16
MAX_SIGNAL_FIELDS = 32


@dataclass(frozen=True)
class Boost:
    """A business signal from a declared payload field, weighted inside the fusion."""

    field: str
    function: BoostFunction
    weight: float
    # Only for "decay": the age (seconds) at which the boost has halved.
    half_life_seconds: float = 0.0


@dataclass(frozen=True)
class SignalField:
    """A payload field declared on a collection as a ranking signal."""

    field: str
    kind: SignalKind


@dataclass(frozen=True)
class RankingSpec:
    """What orders a search. ``window``: how many candidates each retriever contributes to a
    fused ranking (0 = the server's default); hybrid results end after the fused window."""

    method: Method = "vector"
    fusion: Fusion = "weighted"
    vector_weight: float = DEFAULT_WEIGHTS["weighted"][0]
    lexical_weight: float = DEFAULT_WEIGHTS["weighted"][1]
    boosts: tuple[Boost, ...] = field(default=())
    window: int = 0
    rrf_k: float = DEFAULT_RRF_K

    @property
    def uses_vector(self) -> bool:
        return self.method != "lexical"

    @property
    def uses_words(self) -> bool:
        return self.method != "vector"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "fusion": self.fusion,
            "vector_weight": self.vector_weight,
            "lexical_weight": self.lexical_weight,
            "boosts": [
                {
                    "field": b.field,
                    "function": b.function,
                    "weight": b.weight,
                    "half_life_seconds": b.half_life_seconds,
                }
                for b in self.boosts
            ],
            "window": self.window,
            "rrf_k": self.rrf_k,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RankingSpec:
        return cls(
            method=data["method"],
            fusion=data["fusion"],
            vector_weight=float(data["vector_weight"]),
            lexical_weight=float(data["lexical_weight"]),
            boosts=tuple(
                Boost(b["field"], b["function"], float(b["weight"]), float(b["half_life_seconds"]))
                for b in data.get("boosts", [])
            ),
            window=int(data.get("window", 0)),
            rrf_k=float(data.get("rrf_k", DEFAULT_RRF_K)),
        )


VECTOR_RANKING = RankingSpec()


def live_spec(collection: Collection) -> RankingSpec:
    """The collection's default ranking: its live version, else vector ranking."""
    if collection.ranking_spec is None:
        return VECTOR_RANKING
    return RankingSpec.from_json(collection.ranking_spec)


def declared_signals(collection: Collection) -> dict[str, SignalField]:
    return {s["field"]: SignalField(s["field"], s["kind"]) for s in collection.signal_fields}  # type: ignore[arg-type]


def with_window(spec: RankingSpec, settings: Settings) -> RankingSpec:
    """The spec with its window resolved (0 = ``settings.ranking_window``)."""
    return spec if spec.window else replace(spec, window=settings.ranking_window)


def _bad(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field_path, description)


def _check_weight(value: float, field_path: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise _bad(field_path, "must be a finite number >= 0")


def check_ranking_spec(
    spec: RankingSpec, collection: Collection, settings: Settings, field_path: str = "ranking"
) -> None:
    """Every rule a spec must meet for ``collection``, naming the first field that breaks one."""
    if spec.method not in METHODS:
        raise _bad(f"{field_path}.method", f"must be one of {', '.join(METHODS)}")
    if spec.fusion not in FUSIONS:
        raise _bad(f"{field_path}.fusion", f"must be one of {', '.join(FUSIONS)}")
    _check_weight(spec.vector_weight, f"{field_path}.vector_weight")
    _check_weight(spec.lexical_weight, f"{field_path}.lexical_weight")
    if not 0 <= spec.window <= settings.max_ranking_window:
        raise _bad(f"{field_path}.window", f"must be 0 (default) to {settings.max_ranking_window}")
    if not math.isfinite(spec.rrf_k) or spec.rrf_k <= 0:
        raise _bad(f"{field_path}.rrf_k", "must be a finite number > 0")
    if spec.boosts and spec.method != "hybrid":
        raise _bad(f"{field_path}.boosts", "boosts are weighed inside hybrid ranking only")
    if len(spec.boosts) > MAX_BOOSTS:
        raise _bad(f"{field_path}.boosts", f"must hold at most {MAX_BOOSTS} boosts")
    if spec.method == "hybrid" and spec.vector_weight + spec.lexical_weight == 0:
        raise _bad(f"{field_path}.vector_weight", "and lexical_weight must not both be 0")
    signals = declared_signals(collection)
    seen: set[str] = set()
    for i, boost in enumerate(spec.boosts):
        where = f"{field_path}.boosts[{i}]"
        signal = signals.get(boost.field)
        if signal is None:
            raise _bad(
                f"{where}.field",
                f"{boost.field!r} is not a signal field of collection"
                f" {collection.collection_id!r}; declare it with DeclareSignalFields first",
            )
        if boost.field in seen:
            raise _bad(f"{where}.field", "boosts this field a second time")
        seen.add(boost.field)
        allowed = BOOST_FUNCTIONS[signal.kind]
        if boost.function not in allowed:
            raise _bad(
                f"{where}.function",
                f"a {signal.kind} field takes {' or '.join(allowed)}, not {boost.function}",
            )
        _check_weight(boost.weight, f"{where}.weight")
        if boost.function == "decay" and (
            not math.isfinite(boost.half_life_seconds) or boost.half_life_seconds <= 0
        ):
            raise _bad(f"{where}.half_life_seconds", "must be a finite number of seconds > 0")


def check_signal_fields(fields: list[SignalField], field_path: str = "fields") -> None:
    if len(fields) > MAX_SIGNAL_FIELDS:
        raise _bad(field_path, f"must hold at most {MAX_SIGNAL_FIELDS} fields")
    seen: set[str] = set()
    for i, signal in enumerate(fields):
        where = f"{field_path}[{i}]"
        segments = signal.field.split(".")
        if not signal.field or len(segments) > 16 or any(not 1 <= len(s) <= 128 for s in segments):
            raise _bad(f"{where}.field", "must be a dotted path of 1..16 segments of 1..128 chars")
        if "\x00" in signal.field:
            raise _bad(f"{where}.field", "must not contain NUL characters")
        if signal.field in seen:
            raise _bad(f"{where}.field", "is declared twice")
        seen.add(signal.field)
        if signal.kind not in BOOST_FUNCTIONS:
            raise _bad(f"{where}.kind", "must be number or timestamp")
