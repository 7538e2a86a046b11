"""A categories fine-tuning end to end through gRPC on the session's stack, which serves its
models through Triton: the shop's kinds as categories, products that name their kind, a few
nickname sessions clicking the right kind, StartFineTuning(target CATEGORIES, deploy_as_blue)
with one cheap trial (five of six layers frozen). The chain deploys the version to Triton,
copies the categories into ``categories/<version>`` encoding with it, and points the blue item
model's predictions there; the blue item collection stays as it was. Plus the bad requests.

What this module writes (ids "cft-") is deleted at its end; the categories pointer it moved
stays moved (there is no API to move it back), and PredictCategories keeps working from it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from embedding_studio.client import Client
from embedding_studio.v1 import (
    categories_pb2,
    clickstream_pb2,
    common_pb2,
    deployment_pb2,
    fine_tune_pb2,
    search_pb2,
    task_pb2,
    upsert_pb2,
)
from es_cli.demo_catalogue import COLOURS, KINDS, QUERY_FORMS
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

DONE = common_pb2.TASK_STATUS_DONE
CATEGORIES_TARGET = fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES
ONE_CHEAP_TRIAL = {"learning_rate": [5e-4], "frozen_layers": [4], "epochs": [2]}
SESSIONS_PER_KIND = 8


def _category_id(noun: str) -> str:
    return f"cft-{noun.replace(' ', '-')}"


def _product_ids() -> list[str]:
    return [f"{_category_id(kind.noun)}-{i}" for kind in KINDS for i in range(3)]


def _categories_collection(client: Client, collection_id: str) -> str:
    response = client.categories.ListCategories(
        categories_pb2.ListCategoriesRequest(collection_id=collection_id), timeout=30
    )
    return str(response.categories_collection_id)


@pytest.fixture(scope="module")
def blue(client: Client) -> deployment_pb2.Collection:
    return client.get_blue_collection(timeout=30)


def test_without_categories_the_categories_target_is_refused(
    client: Client, blue: deployment_pb2.Collection
) -> None:
    if _categories_collection(client, blue.collection_id):
        # tests/e2e/test_categories_api.py, first in a whole run, checks this before it
        # writes categories; here when this module runs first.
        pytest.skip("another module of this session already gave the blue model categories")
    error = expect_error(
        lambda: client.start_fine_tuning(target=CATEGORIES_TARGET, timeout=30),
        grpc.StatusCode.FAILED_PRECONDITION,
        "target",
    )
    assert "UpsertCategories" in (error.details() or "")


def test_an_unknown_target_is_refused_naming_it(client: Client) -> None:
    expect_error(
        lambda: client.start_fine_tuning(
            target=99,  # type: ignore[arg-type]
            timeout=30,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "target",
    )


@pytest.fixture(scope="module")
def shop(client: Client, blue: deployment_pb2.Collection) -> Iterator[None]:
    """Three products of each kind in the blue collection (payload "category": the kind's
    category id), the kinds as categories, and the nickname sessions, each clicking a product
    of its kind among one of every kind."""
    products = [
        {
            "object_id": f"{_category_id(kind.noun)}-{i}",
            "payload": {"category": _category_id(kind.noun), "suite": "cft"},
            "text": f"{kind.features[i]} {kind.noun} in {COLOURS[i]}",
        }
        for kind in KINDS
        for i in range(3)
    ]
    task = client.upsert_items(products, collection_id=blue.collection_id, timeout=60)
    assert client.wait_for_task(task.task_id, timeout_seconds=600).status == DONE
    categories = []
    for kind in KINDS:
        payload = Struct()
        payload.update({"suite": "cft"})
        categories.append(
            categories_pb2.Category(
                category_id=_category_id(kind.noun), name=kind.noun, text=kind.noun, payload=payload
            )
        )
    response = client.categories.UpsertCategories(
        categories_pb2.UpsertCategoriesRequest(
            categories=categories, collection_id=blue.collection_id
        ),
        timeout=60,
    )
    assert client.wait_for_task(response.task.task_id, timeout_seconds=600).status == DONE
    events = []
    for k, kind in enumerate(KINDS):
        for q in range(SESSIONS_PER_KIND):
            session_id = f"cft-{k}-{q}"
            shown = [f"{_category_id(other.noun)}-{q % 3}" for other in KINDS]
            client.clickstream.RegisterSession(
                clickstream_pb2.RegisterSessionRequest(
                    session=clickstream_pb2.Session(
                        session_id=session_id,
                        user_id=f"cft-user-{q}",
                        query_text=QUERY_FORMS[q % len(QUERY_FORMS)].format(
                            nickname=kind.nickname,
                            colour=COLOURS[q % len(COLOURS)],
                            feature=kind.features[q % len(kind.features)],
                        ),
                        results=[
                            clickstream_pb2.ShownResult(object_id=o, rank=r)
                            for r, o in enumerate(shown)
                        ],
                        collection_id=blue.collection_id,
                    )
                ),
                timeout=30,
            )
            events.append(
                clickstream_pb2.SessionEvent(
                    event_id=f"{session_id}-click",
                    session_id=session_id,
                    object_id=shown[k],
                    event_type="click",
                )
            )
    pushed = client.clickstream.PushEvents(
        clickstream_pb2.PushEventsRequest(events=events), timeout=60
    )
    assert pushed.accepted_count == len(events)
    yield
    client.categories.DeleteCategories(
        categories_pb2.DeleteCategoriesRequest(
            category_ids=[_category_id(kind.noun) for kind in KINDS],
            collection_id=blue.collection_id,
        ),
        timeout=60,
    )
    deleted = client.upsert.DeleteItems(
        upsert_pb2.DeleteItemsRequest(object_ids=_product_ids(), collection_id=blue.collection_id),
        timeout=60,
    )
    client.wait_for_task(deleted.task.task_id, timeout_seconds=600)


@pytest.fixture(scope="module")
def tuned(
    client: Client, blue: deployment_pb2.Collection, shop: None
) -> tuple[str, fine_tune_pb2.FineTuningTask]:
    """(the categories collection predictions read before, the ended fine-tuning task)."""
    before = _categories_collection(client, blue.collection_id)
    assert before.startswith("categories/")
    started = client.start_fine_tuning(
        target=CATEGORIES_TARGET,
        deploy_as_blue=True,
        hyperparameters=ONE_CHEAP_TRIAL,
        idempotency_key="e2e-category-fine-tuning-triton",
        timeout=60,
    )
    assert started.target == CATEGORIES_TARGET and started.deploy_as_blue
    final = client.wait_for_task(started.task.task_id, timeout_seconds=1800)
    assert final.status == DONE, final.error
    return before, client.get_fine_tuning_task(started.task.task_id, timeout=30)


def test_the_version_is_deployed_then_predictions_read_its_categories(
    client: Client,
    blue: deployment_pb2.Collection,
    tuned: tuple[str, fine_tune_pb2.FineTuningTask],
) -> None:
    before, task = tuned
    assert task.deployable, (task.promotion.reason, sorted(task.metrics.items()))
    version = task.model_id
    promotion = task.promotion
    assert promotion.step == fine_tune_pb2.PROMOTION_STEP_SWITCHED, promotion.reason
    assert promotion.model_id == version
    assert promotion.deploy_task_id and promotion.categories_task_id
    assert promotion.categories_collection_id == f"categories/{version}"
    assert promotion.previous_categories_collection_id == before
    assert not promotion.reindex_task_id  # items are not reindexed

    # Deployed to Triton through the deployment task, before anything encoded with it.
    deployment = client.tasks.GetTask(
        task_pb2.GetTaskRequest(task_id=promotion.deploy_task_id), timeout=30
    ).task
    assert deployment.kind == common_pb2.TASK_KIND_DEPLOYMENT and deployment.status == DONE
    assert deployment.deployment.deployed and deployment.deployment.triton_models
    switch = client.tasks.GetTask(
        task_pb2.GetTaskRequest(task_id=promotion.categories_task_id), timeout=30
    ).task
    assert switch.kind == common_pb2.TASK_KIND_CATEGORIES_SWITCH and switch.status == DONE
    assert switch.finish_time.ToDatetime() >= deployment.finish_time.ToDatetime()
    assert switch.categories_switch.items_model_id == blue.model_id
    assert switch.categories_switch.categories_collection_id == f"categories/{version}"
    assert switch.categories_switch.categories_copied >= len(KINDS)

    # PredictCategories on the blue item collection answers from the version's categories.
    kind = KINDS[0]
    predicted: search_pb2.PredictCategoriesResponse = client.search.PredictCategories(
        search_pb2.PredictCategoriesRequest(
            collection_id=blue.collection_id,
            query_text=f"{kind.nickname} {COLOURS[5]} {kind.features[4]}",
            limit=3,
        ),
        timeout=60,
    )
    assert predicted.categories_collection_id == f"categories/{version}"
    assert predicted.predictions
    assert _categories_collection(client, blue.collection_id) == f"categories/{version}"

    # The blue item collection is the one it was.
    now = client.get_blue_collection(timeout=30)
    assert (now.collection_id, now.model_id) == (blue.collection_id, blue.model_id)
