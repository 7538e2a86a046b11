"""Hostile strings in user ids, session and event fields: a normal answer or INVALID_ARGUMENT,
never an effect on the database."""

from __future__ import annotations

import grpc
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2, search_pb2, upsert_pb2

pytestmark = pytest.mark.e2e

HOSTILE = [
    "'; DROP TABLE sessions; --",
    "' OR '1'='1",
    '"); SELECT pg_sleep(5); --',
    "$1",
    "\\",
    "%",
    "_",
    "robert'); DELETE FROM tasks WHERE ('1'='1",
    "x\x00y",
]
VECTOR = [1.0] + [0.0] * 383


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_user_ids_get_a_normal_answer_or_invalid_argument(
    client: Client, hostile: str
) -> None:
    before = client.search.CountItems(search_pb2.CountItemsRequest()).count
    try:
        reply = client.search.Search(
            search_pb2.SearchRequest(
                query_vector={"values": VECTOR}, limit=3, user_id=hostile, create_session=True
            )
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "\x00" in hostile
        return
    assert all(r.user_id == "" for r in reply.results)  # no copies for this user
    if reply.session_id:
        stored = client.clickstream.GetSession(
            clickstream_pb2.GetSessionRequest(session_id=reply.session_id)
        ).session
        assert stored.user_id == hostile
        sessions = client.clickstream.ListSessions(
            clickstream_pb2.ListSessionsRequest(user_id=hostile)
        ).sessions
        assert [s.session_id for s in sessions][:1] == [reply.session_id]
    assert client.search.CountItems(search_pb2.CountItemsRequest()).count == before


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_object_ids_are_plain_data(client: Client, hostile: str) -> None:
    try:
        reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=[hostile]))
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "\x00" in hostile
        return
    assert list(reply.missing_object_ids) == [hostile]
