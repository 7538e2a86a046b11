"""Translation between wire messages and es_core types; validation of shape happens here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from embedding_studio.v1 import common_pb2, deployment_pb2, fine_tune_pb2
from es_core.domain import Collection, FilterableField, FilterableType, Model
from es_core.errors import InvalidArgument
from es_core.filters import model as fm
from es_core.filters.validation import check_field_path, validate_filter
from es_core.item_input import ItemInput, PartInput
from es_core.search.query import SearchHit, SortSpec
from es_core.storage.item_rows import StoredItem
from es_core.tasks import results
from es_core.tasks.model import TASK_KINDS, Task, TaskKind, TaskStatus
from es_server.source_convert import failure_to_proto, source_from_proto, source_to_proto


def _tidy(value: Any) -> Any:
    """Struct numbers are doubles; give whole numbers back their integer form."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


def struct_to_dict(struct: struct_pb2.Struct, where: str) -> dict[str, Any]:
    return dict(_to_python(struct, where))


def value_to_python(value: struct_pb2.Value, where: str) -> Any:
    return _to_python(value, where)


def _to_python(message: struct_pb2.Struct | struct_pb2.Value, where: str) -> Any:
    try:
        return _tidy(json_format.MessageToDict(message))
    except ValueError:  # JSON has no NaN or Infinity
        raise InvalidArgument.field_error(where, "numbers must be finite") from None


def dict_to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def optional_time(message: Any, name: str) -> datetime | None:
    """The message's timestamp field as an aware UTC datetime; None when it is not set."""
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


def optional_json(message: Any, name: str) -> dict[str, Any] | None:
    """A message field as its JSON form (how a session keeps the filter and sort a search was
    asked with); None when it is not set."""
    if not message.HasField(name):
        return None
    return dict(json_format.MessageToDict(getattr(message, name)))


# ---- filters -------------------------------------------------------------------------------


# Not set means OR, as the contract says.
_MATCH_OPERATORS: dict[int, Literal["or", "and"]] = {
    common_pb2.MATCH_OPERATOR_UNSPECIFIED: "or",
    common_pb2.MATCH_OPERATOR_OR: "or",
    common_pb2.MATCH_OPERATOR_AND: "and",
}


def filter_from_proto(message: common_pb2.Filter, where: str) -> fm.Filter:
    """A wire filter as an es_core filter; shape errors name the field (``filter.bool.must[1]``)."""
    kind = message.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument.field_error(where, "must set one filter kind (term, terms, range, …)")
    here = f"{where}.{kind}"
    if kind == "term":
        return fm.Term(message.term.field, _scalar(message.term, "value", f"{here}.value"))
    if kind == "terms":
        values = tuple(
            value_to_python(v, f"{here}.values[{i}]") for i, v in enumerate(message.terms.values)
        )
        return fm.Terms(message.terms.field, values)
    if kind == "range":
        r = message.range
        bounds = {
            b: _scalar(r, b, f"{here}.{b}") if r.HasField(b) else None
            for b in ("gt", "gte", "lt", "lte")
        }
        return fm.Range(r.field, **bounds)
    if kind == "exists":
        return fm.Exists(message.exists.field)
    if kind == "match":
        operator = _MATCH_OPERATORS.get(message.match.operator)
        if operator is None:
            raise InvalidArgument.field_error(
                f"{here}.operator", f"{message.match.operator} is not a known match operator"
            )
        return fm.Match(message.match.field, message.match.query, operator)
    if kind == "wildcard":
        w = message.wildcard
        return fm.Wildcard(w.field, w.pattern, w.case_insensitive)
    if kind == "bool":
        b = message.bool
        return fm.Bool(
            must=_filters(b.must, f"{here}.must"),
            should=_filters(b.should, f"{here}.should"),
            must_not=_filters(b.must_not, f"{here}.must_not"),
            minimum_should_match=b.minimum_should_match,
        )
    assert kind == "nested"
    if not message.nested.HasField("filter"):
        raise InvalidArgument.field_error(f"{here}.filter", "must be set")
    return fm.Nested(
        message.nested.path, filter_from_proto(message.nested.filter, f"{here}.filter")
    )


def _filters(messages: Sequence[common_pb2.Filter], where: str) -> tuple[fm.Filter, ...]:
    return tuple(filter_from_proto(m, f"{where}[{i}]") for i, m in enumerate(messages))


def _scalar(message: Any, name: str, where: str) -> Any:
    if not message.HasField(name):
        raise InvalidArgument.field_error(where, "must be set")
    return value_to_python(getattr(message, name), where)


def optional_filter(message: Any, name: str = "filter", where: str = "") -> fm.Filter | None:
    """The message's filter, converted and checked, or None when it is not set.
    ``where`` is its path in the request (default: ``name``)."""
    if not message.HasField(name):
        return None
    where = where or name
    converted = filter_from_proto(getattr(message, name), where)
    validate_filter(converted, where)
    return converted


def optional_sort(message: Any, name: str = "sort", where: str = "") -> SortSpec | None:
    if not message.HasField(name):
        return None
    where = where or name
    sort = getattr(message, name)
    check_field_path(sort.field, f"{where}.field")
    if sort.order not in common_pb2.SortOrder.values():
        raise InvalidArgument.field_error(f"{where}.order", "is not a known sort order")
    return SortSpec(sort.field, descending=sort.order == common_pb2.SORT_ORDER_DESC)


# ---- items and results ---------------------------------------------------------------------


def items_from_proto(messages: Sequence[Any]) -> list[ItemInput]:
    items = []
    for i, m in enumerate(messages):
        parts = []
        for j, p in enumerate(m.parts):
            has_text, has_vector = bool(p.text), len(p.vector) > 0
            if not has_text and not has_vector:
                raise InvalidArgument.field_error(
                    f"items[{i}].parts[{j}]", "must have a text, a vector or both"
                )
            vector = np.asarray(p.vector, dtype=np.float32) if has_vector else None
            parts.append(PartInput(p.part_id or str(j), p.text or None, vector))
        has_source = m.HasField("source")
        # proto3 cannot tell an empty text from none: an item with no content at all is an
        # empty text, which fails that item alone (stage split), not the request.
        text = m.text if m.text or not (parts or has_source) else None
        items.append(
            ItemInput(
                m.object_id,
                struct_to_dict(m.payload, f"items[{i}].payload"),
                text,
                parts,
                source_from_proto(m.source) if has_source else None,
            )
        )
    return items


def hit_to_proto(hit: SearchHit) -> common_pb2.SearchResult:
    return common_pb2.SearchResult(
        object_id=hit.object_id,
        distance=hit.distance,
        payload=dict_to_struct(hit.payload),
        matched_part_id=hit.matched_part_id,
        user_id=hit.user_id,
        score=-hit.distance if hit.score is None else hit.score,
        lexical_score=hit.lexical_score,
    )


def item_to_proto(item: StoredItem) -> common_pb2.Item:
    return common_pb2.Item(
        object_id=item.object_id,
        payload=dict_to_struct(item.payload),
        parts=[
            common_pb2.ItemPart(part_id=p.part_id, text=p.text or "", vector=p.vector or [])
            for p in item.parts
        ],
        user_id=item.user_id or "",
        update_time=timestamp(item.update_time),
        version=item.version,
        source=None if item.source is None else source_to_proto(item.source),
    )


# ---- tasks ---------------------------------------------------------------------------------


def task_to_proto(task: Task) -> common_pb2.Task:
    return common_pb2.Task(
        task_id=task.task_id,
        kind=f"TASK_KIND_{task.kind.upper()}",
        status=f"TASK_STATUS_{task.status.upper()}",
        parent_task_id=task.parent_task_id or "",
        progress=task.progress,
        progress_message=task.progress_message,
        error=task.error,
        attempts=task.attempts,
        idempotency_key=task.idempotency_key or "",
        result=dict_to_struct(task.result),
        **_outcome(task),
        create_time=timestamp(task.create_time),
        update_time=timestamp(task.update_time),
        start_time=timestamp(task.start_time),
        finish_time=timestamp(task.finish_time),
    )


_OUTCOMES: dict[type[results.TaskResult], Any] = {
    results.UpsertionResult: common_pb2.UpsertionResult,
    results.DeletionResult: common_pb2.DeletionResult,
    results.ImprovementResult: common_pb2.ImprovementResult,
    results.DeploymentResult: common_pb2.DeploymentResult,
    results.ReindexResult: common_pb2.ReindexResult,
    results.RankingFitResult: common_pb2.RankingFitResult,
    results.CategoriesSwitchResult: common_pb2.CategoriesSwitchResult,
    results.ImportResult: common_pb2.ImportResult,
}
# The outcome field of a kind whose name is not the field's ("import" is a Python keyword).
_OUTCOME_FIELDS = {"import": "import_result"}


def _outcome(task: Task) -> dict[str, Any]:
    """The task's typed outcome as the ``Task.outcome`` field named for its kind."""
    typed = results.result_of(task)
    if typed is None:
        return {}
    values = asdict(typed)
    if isinstance(typed, (results.UpsertionResult, results.ImportResult)):
        values["failed_items"] = [failure_to_proto(f) for f in typed.failed_items]
    return {_OUTCOME_FIELDS.get(task.kind, task.kind): _OUTCOMES[type(typed)](**values)}


def fine_tuning_task_to_proto(task: Task) -> fine_tune_pb2.FineTuningTask:
    """A fine-tuning task with what it trained on and, once done, what it produced; the model
    in service's figures are in ``metrics`` under keys prefixed ``in_service.``, the deploy
    gate's (the gain and its interval, the items ranked) under ``gate.``."""
    params, result = task.params, task.result
    metrics = _numbers(result.get("metrics"), "")
    metrics.update(_numbers(result.get("in_service_metrics"), "in_service."))
    metrics.update(_numbers(result.get("gate"), "gate."))
    batch_id = result.get("batch_id") or params.get("resolved_batch_id") or params.get("batch_id")
    return fine_tune_pb2.FineTuningTask(
        task=task_to_proto(task),
        batch_id=str(batch_id or ""),
        model_id=str(result.get("model_id") or ""),
        mlflow_run_id=str(result.get("mlflow_run_id") or ""),
        metrics=metrics,
        deployable=bool(result.get("deployable")),
        deploy_as_blue=bool(params.get("deploy_as_blue")),
        promotion=_promotion(result.get("promotion")),
        target=_TARGETS.get(
            str(params.get("target") or "items"), fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED
        ),
    )


_TARGETS = {
    "items": fine_tune_pb2.FINE_TUNING_TARGET_ITEMS,
    "categories": fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES,
}


_PROMOTION_STEPS = set(fine_tune_pb2.PromotionStep.keys())


def _promotion(promotion: Any) -> fine_tune_pb2.Promotion | None:
    if not isinstance(promotion, dict):
        return None
    fields = (
        "model_id",
        "deploy_task_id",
        "reindex_task_id",
        "collection_id",
        "previous_collection_id",
        "deleted_collection_id",
        "reason",
        "interleaving",
        "categories_task_id",
        "categories_collection_id",
        "previous_categories_collection_id",
    )
    step = f"PROMOTION_STEP_{str(promotion.get('step')).upper()}"
    return fine_tune_pb2.Promotion(
        step=step if step in _PROMOTION_STEPS else "PROMOTION_STEP_UNSPECIFIED",
        **{name: str(promotion.get(name) or "") for name in fields},
    )


def _numbers(values: Any, prefix: str) -> dict[str, float]:
    if not isinstance(values, dict):
        return {}
    return {
        f"{prefix}{name}": float(value)
        for name, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def task_kind_from_proto(kind: int, where: str = "kind") -> TaskKind | None:
    if kind == common_pb2.TASK_KIND_UNSPECIFIED:
        return None
    if kind not in common_pb2.TaskKind.values():
        raise InvalidArgument.field_error(where, f"{kind} is not a known task kind")
    name = common_pb2.TaskKind.Name(kind).removeprefix("TASK_KIND_").lower()
    return next(k for k in TASK_KINDS if k == name)


def task_statuses_from_proto(statuses: Sequence[int], where: str = "statuses") -> list[TaskStatus]:
    names: list[TaskStatus] = []
    for i, status in enumerate(statuses):
        if (
            status == common_pb2.TASK_STATUS_UNSPECIFIED
            or status not in common_pb2.TaskStatus.values()
        ):
            raise InvalidArgument.field_error(f"{where}[{i}]", "must be a known task status")
        names.append(common_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower())  # type: ignore[arg-type]
    return names


# ---- collections ---------------------------------------------------------------------------

_METRICS = {
    "cosine": common_pb2.METRIC_COSINE,
    "dot": common_pb2.METRIC_DOT,
    "euclidean": common_pb2.METRIC_EUCLIDEAN,
}
_AGGREGATIONS = {"min": common_pb2.AGGREGATION_MIN, "avg": common_pb2.AGGREGATION_AVG}
_COLLECTION_STATES = {
    "green": deployment_pb2.COLLECTION_STATE_GREEN,
    "blue": deployment_pb2.COLLECTION_STATE_BLUE,
    "retired": deployment_pb2.COLLECTION_STATE_RETIRED,
}


_FIELD_TYPES: dict[FilterableType, deployment_pb2.FieldType] = {
    "keyword": deployment_pb2.FIELD_TYPE_KEYWORD,
    "number": deployment_pb2.FIELD_TYPE_NUMBER,
}


def filterable_fields_from_proto(
    fields: Sequence[deployment_pb2.FilterableField], field_path: str = "fields"
) -> list[FilterableField]:
    """The declared fields of a request; a type not set is InvalidArgument naming it."""
    by_number = {number: name for name, number in _FIELD_TYPES.items()}
    out = []
    for i, f in enumerate(fields):
        kind = by_number.get(f.type)
        if kind is None:
            raise InvalidArgument.field_error(
                f"{field_path}[{i}].type", "must be FIELD_TYPE_KEYWORD or FIELD_TYPE_NUMBER"
            )
        out.append(FilterableField(f.field, kind))
    return out


def collection_to_proto(collection: Collection, item_count: int) -> deployment_pb2.Collection:
    model = collection.model
    return deployment_pb2.Collection(
        collection_id=collection.collection_id,
        model_id=model.model_id,
        state=_COLLECTION_STATES[collection.state],
        dimensions=model.dimensions,
        metric=_METRICS[model.metric],
        aggregation=_AGGREGATIONS[model.aggregation],
        item_count=item_count,
        create_time=timestamp(collection.create_time),
        filterable_fields=[
            deployment_pb2.FilterableField(field=f.field, type=_FIELD_TYPES[f.type])
            for f in collection.filterable_fields
        ],
    )


def model_to_proto(model: Model) -> deployment_pb2.Model:
    return deployment_pb2.Model(
        model_id=model.model_id,
        name=model.name,
        version=model.version,
        dimensions=model.dimensions,
        metric=_METRICS[model.metric],
        aggregation=_AGGREGATIONS[model.aggregation],
        parent_model_id=model.parent_model_id or "",
        deployed=model.deployed,
        create_time=timestamp(model.create_time),
    )
