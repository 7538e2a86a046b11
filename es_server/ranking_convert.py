"""Ranking specs, signal fields and versions: proto <-> es_core.ranking types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from embedding_studio.v1 import ranking_pb2
from es_core.errors import InvalidArgument
from es_core.ranking.spec import (
    DEFAULT_RRF_K,
    DEFAULT_WEIGHTS,
    Boost,
    BoostFunction,
    Fusion,
    Method,
    RankingSpec,
    SignalField,
    SignalKind,
)
from es_core.ranking.store import RankingSettings, SpecVersion
from es_server.convert import timestamp

_METHODS: dict[int, Method] = {
    ranking_pb2.RANKING_METHOD_VECTOR: "vector",
    ranking_pb2.RANKING_METHOD_LEXICAL: "lexical",
    ranking_pb2.RANKING_METHOD_HYBRID: "hybrid",
}
_FUSIONS: dict[int, Fusion] = {
    ranking_pb2.FUSION_METHOD_UNSPECIFIED: "weighted",
    ranking_pb2.FUSION_METHOD_WEIGHTED: "weighted",
    ranking_pb2.FUSION_METHOD_RECIPROCAL_RANK: "rrf",
}
_FUNCTIONS: dict[int, BoostFunction] = {
    ranking_pb2.BOOST_FUNCTION_LOG: "log",
    ranking_pb2.BOOST_FUNCTION_LINEAR: "linear",
    ranking_pb2.BOOST_FUNCTION_DECAY: "decay",
}
_KINDS: dict[int, SignalKind] = {
    ranking_pb2.SIGNAL_KIND_NUMBER: "number",
    ranking_pb2.SIGNAL_KIND_TIMESTAMP: "timestamp",
}
_ORIGINS = {
    "manual": ranking_pb2.RANKING_SPEC_ORIGIN_MANUAL,
    "learned": ranking_pb2.RANKING_SPEC_ORIGIN_LEARNED,
    "inherited": ranking_pb2.RANKING_SPEC_ORIGIN_INHERITED,
}


def _enum(table: Mapping[int, str], value: int, where: str, what: str) -> str:
    if value not in table:
        raise InvalidArgument.field_error(where, f"is not a known {what} ({value})")
    return table[value]


def _key(table: Mapping[int, str], value: str) -> Any:
    """The proto enum number of a library value."""
    return next(k for k, v in table.items() if v == value)


def spec_from_proto(message: ranking_pb2.RankingSpec, where: str) -> RankingSpec:
    """The spec with defaults filled in; unknown enum values are INVALID_ARGUMENT."""
    if message.method == ranking_pb2.RANKING_METHOD_UNSPECIFIED:
        raise InvalidArgument.field_error(f"{where}.method", "must be set")
    method = _enum(_METHODS, message.method, f"{where}.method", "ranking method")
    fusion = _enum(_FUSIONS, message.fusion, f"{where}.fusion", "fusion method")
    vector_default, lexical_default = DEFAULT_WEIGHTS[fusion]  # type: ignore[index]
    boosts = []
    for i, b in enumerate(message.boosts):
        if b.function == ranking_pb2.BOOST_FUNCTION_UNSPECIFIED:
            raise InvalidArgument.field_error(f"{where}.boosts[{i}].function", "must be set")
        function = _enum(_FUNCTIONS, b.function, f"{where}.boosts[{i}].function", "function")
        boosts.append(Boost(b.field, function, b.weight, b.half_life_seconds))  # type: ignore[arg-type]
    return RankingSpec(
        method=method,  # type: ignore[arg-type]
        fusion=fusion,  # type: ignore[arg-type]
        vector_weight=message.vector_weight
        if message.HasField("vector_weight")
        else vector_default,
        lexical_weight=message.lexical_weight
        if message.HasField("lexical_weight")
        else lexical_default,
        boosts=tuple(boosts),
        window=message.window,
        rrf_k=message.rrf_k or DEFAULT_RRF_K,
    )


def spec_to_proto(spec: RankingSpec) -> ranking_pb2.RankingSpec:
    if spec.method == "vector":
        # Fusion, weights, boosts and window play no part in a vector ranking: none is shown.
        return ranking_pb2.RankingSpec(method=ranking_pb2.RANKING_METHOD_VECTOR)
    return ranking_pb2.RankingSpec(
        method=_key(_METHODS, spec.method),
        fusion=ranking_pb2.FUSION_METHOD_RECIPROCAL_RANK
        if spec.fusion == "rrf"
        else ranking_pb2.FUSION_METHOD_WEIGHTED,
        vector_weight=spec.vector_weight,
        lexical_weight=spec.lexical_weight,
        boosts=[
            ranking_pb2.Boost(
                field=b.field,
                function=_key(_FUNCTIONS, b.function),
                weight=b.weight,
                half_life_seconds=b.half_life_seconds,
            )
            for b in spec.boosts
        ],
        window=spec.window,
        rrf_k=spec.rrf_k,
    )


def signal_fields_from_proto(
    messages: list[ranking_pb2.SignalField], where: str = "fields"
) -> list[SignalField]:
    fields = []
    for i, m in enumerate(messages):
        if m.kind == ranking_pb2.SIGNAL_KIND_UNSPECIFIED:
            raise InvalidArgument.field_error(f"{where}[{i}].kind", "must be set")
        kind = _enum(_KINDS, m.kind, f"{where}[{i}].kind", "signal kind")
        fields.append(SignalField(m.field, kind))  # type: ignore[arg-type]
    return fields


def version_to_proto(version: SpecVersion) -> ranking_pb2.RankingSpecVersion:
    return ranking_pb2.RankingSpecVersion(
        version=version.version,
        spec=spec_to_proto(version.spec),
        origin=_ORIGINS[version.origin],
        deployable=version.deployable,
        metrics=version.metrics,
        task_id=version.task_id,
        note=version.note,
        create_time=timestamp(version.create_time),
    )


def settings_to_proto(settings: RankingSettings) -> ranking_pb2.RankingSettings:
    return ranking_pb2.RankingSettings(
        collection_id=settings.collection_id,
        text_search_config=settings.text_search_config,
        signal_fields=[
            ranking_pb2.SignalField(field=s.field, kind=_key(_KINDS, s.kind))
            for s in settings.signal_fields
        ],
        live=None if settings.live is None else version_to_proto(settings.live),
        previous=None if settings.previous is None else version_to_proto(settings.previous),
    )
