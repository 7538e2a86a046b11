"""What each kind of task reports when it ends, typed: read from the JSON its worker stored in
``tasks.result`` (``result_of``), for the API to return by kind and for the library to read
without guessing keys. A figure the task did not report reads as zero or empty."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeAlias, TypeVar, get_args, get_origin, get_type_hints

from es_core.loaders.model import ItemFailure
from es_core.tasks.model import Task

#: How many superseded ids a write's result lists (its count covers them all).
MAX_SUPERSEDED_IDS_LISTED = 100
#: How many failed items a write's or an import's result lists (its count covers them all).
MAX_FAILED_ITEMS_LISTED = 100


@dataclass(frozen=True)
class UpsertionResult:
    upserted_count: int = 0
    superseded_count: int = 0  # left alone: a newer write had reached them
    superseded_object_ids: list[str] = field(default_factory=list)  # the first 100
    failed_count: int = 0
    failed_items: list[ItemFailure] = field(default_factory=list)  # the first 100


@dataclass(frozen=True)
class ImportResult:
    imported_count: int = 0
    failed_count: int = 0
    failed_items: list[ItemFailure] = field(default_factory=list)  # the first 100
    superseded_count: int = 0
    sources_done: int = 0


@dataclass(frozen=True)
class DeletionResult:
    deleted_count: int = 0
    missing_count: int = 0
    superseded_count: int = 0  # left alone: a newer write had reached them
    superseded_object_ids: list[str] = field(default_factory=list)  # the first 100


@dataclass(frozen=True)
class ImprovementResult:
    improved_sessions: int = 0
    skipped_sessions: int = 0
    copies_written: int = 0
    skipped_because: dict[str, int] = field(default_factory=dict)
    recomputed_in: str = ""
    recomputed_from: str = ""
    users: int = 0


@dataclass(frozen=True)
class DeploymentResult:
    action: str = ""
    model_id: str = ""
    triton_models: list[str] = field(default_factory=list)
    deployed: bool = False


@dataclass(frozen=True)
class ReindexResult:
    copied: int = 0
    already_present: int = 0
    gone: int = 0
    item_count: int = 0
    source_item_count: int = 0
    subtasks: int = 0
    destination_collection_id: str = ""
    user_copies_task_id: str = ""
    checkpoint: str = ""
    pages: int = 0
    categories_copied: int = 0  # a whole reindex into another model: its categories copied

    @property
    def done(self) -> int:
        """Items the destination now holds from this range or reindex, or knows are gone."""
        return self.copied + self.already_present + self.gone


@dataclass(frozen=True)
class RankingFitResult:
    version: int = 0
    went_live: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class CategoriesSwitchResult:
    items_model_id: str = ""
    previous_categories_collection_id: str = ""
    categories_collection_id: str = ""
    categories_copied: int = 0  # a replay writes none the collection already holds


TaskResult: TypeAlias = (
    UpsertionResult
    | DeletionResult
    | ImprovementResult
    | DeploymentResult
    | ReindexResult
    | RankingFitResult
    | CategoriesSwitchResult
    | ImportResult
)

#: The typed result of each kind that has one (a fine-tuning's is FineTuneService's own).
RESULT_TYPES: dict[str, type[TaskResult]] = {
    "upsertion": UpsertionResult,
    "deletion": DeletionResult,
    "improvement": ImprovementResult,
    "deployment": DeploymentResult,
    "reindex": ReindexResult,
    "ranking_fit": RankingFitResult,
    "categories_switch": CategoriesSwitchResult,
    "import": ImportResult,
}

R = TypeVar("R", bound=TaskResult)


def parse_result(result_type: type[R], stored: dict[str, Any]) -> R:
    """``stored`` read as ``result_type``: its known keys, each cast to the field's type (JSON
    keeps whole numbers as floats at times); other keys are left out."""
    hints = get_type_hints(result_type)
    values: dict[str, Any] = {}
    for f in fields(result_type):
        value = stored.get(f.name)
        if value is None:
            continue
        hint = hints[f.name]
        origin, args = get_origin(hint), get_args(hint)
        if origin is list and is_dataclass(args[0]):
            values[f.name] = [_parse_record(args[0], v) for v in value]
        elif origin is list:
            values[f.name] = [args[0](v) for v in value]
        elif origin is dict:
            values[f.name] = {str(k): args[1](v) for k, v in value.items()}
        else:
            values[f.name] = hint(value)
    return result_type(**values)


def _parse_record(record_type: Any, stored: dict[str, Any]) -> Any:
    """A listed record (a failed item) of a result: its known keys, each cast to its type."""
    hints = get_type_hints(record_type)
    return record_type(
        **{f.name: hints[f.name](stored[f.name]) for f in fields(record_type) if f.name in stored}
    )


def result_of(task: Task) -> TaskResult | None:
    """The task's typed result; None for a kind without one, or while it has reported none."""
    result_type = RESULT_TYPES.get(task.kind)
    if result_type is None or not task.result:
        return None
    return parse_result(result_type, task.result)
