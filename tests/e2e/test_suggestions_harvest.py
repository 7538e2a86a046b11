"""Suggestions that learn, through gRPC on the shared stack: sessions registered and clicked
for several users, the beat's harvest (every 3 s on this stack) turns the query two users
succeeded with into a suggestion of the "clickstream" domain, and never the query of a single
user nor one whose sessions were marked irrelevant.

Every query carries a random word of its own, so runs never meet."""

from __future__ import annotations

import time
import uuid

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import suggestion_pb2 as sg

pytestmark = pytest.mark.e2e

OBJECTS = ["hv-a", "hv-b", "hv-c"]


def word() -> str:
    return "hv" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def searched(client: Client, user_id: str, query_text: str, *, irrelevant: bool = False) -> str:
    """A session of ``user_id`` for ``query_text`` with a click on its second result; marked
    irrelevant first when asked (before the click, so no harvest ever saw it relevant)."""
    session_id = f"hv-{uuid.uuid4().hex[:12]}"
    session = cs.Session(
        session_id=session_id,
        user_id=user_id,
        query_text=query_text,
        results=[cs.ShownResult(object_id=o, rank=r) for r, o in enumerate(OBJECTS)],
    )
    client.clickstream.RegisterSession(cs.RegisterSessionRequest(session=session), timeout=60)
    if irrelevant:
        client.clickstream.MarkSessionIrrelevant(
            cs.MarkSessionIrrelevantRequest(session_id=session_id), timeout=60
        )
    event = cs.SessionEvent(
        event_id="e1", session_id=session_id, object_id=OBJECTS[1], event_type="click"
    )
    client.clickstream.PushEvents(cs.PushEventsRequest(events=[event]), timeout=60)
    return session_id


def suggested(client: Client, prefix: str) -> list[str]:
    request = sg.SuggestRequest(prefix=prefix, domains=["clickstream"], limit=20)
    return [s.phrase for s in client.suggestions.Suggest(request, timeout=30).suggestions]


def test_harvested_suggestions_come_from_several_users_and_relevant_sessions(
    client: Client,
) -> None:
    w = word()
    # First the queries that must never be harvested, so that the pass that harvests the
    # good one has seen them too.
    solo = f"{w} solo"
    for _ in range(3):
        searched(client, "hv-user-solo", solo)
    ignored = f"{w} ignored"
    searched(client, f"hv-{uuid.uuid4().hex[:8]}", ignored, irrelevant=True)
    searched(client, f"hv-{uuid.uuid4().hex[:8]}", ignored, irrelevant=True)
    good = f"{w} boots"
    searched(client, f"hv-{uuid.uuid4().hex[:8]}", good)
    searched(client, f"hv-{uuid.uuid4().hex[:8]}", good)

    deadline = time.monotonic() + 120
    found: list[str] = []
    while time.monotonic() < deadline:
        found = suggested(client, w)
        if good in found:
            break
        time.sleep(1)
    assert found == [good]
