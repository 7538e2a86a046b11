"""SuggestionService through gRPC on the shared stack: phrases added, updated, listed, read,
suggested with each match type (typos and mid-phrase included, spans right, domains
respected), deleted; bad requests are INVALID_ARGUMENT naming the field.

Every test uses a domain of its own ("sg-" + random), so runs never meet."""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedding_studio.client import Client
from embedding_studio.v1 import suggestion_pb2 as sg
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

BAD = grpc.StatusCode.INVALID_ARGUMENT


def domain() -> str:
    return f"sg-{uuid.uuid4().hex[:10]}"


def add(client: Client, *phrases: sg.PhraseInput) -> list[str]:
    reply = client.suggestions.AddPhrases(sg.AddPhrasesRequest(phrases=phrases), timeout=30)
    return list(reply.phrase_ids)


def suggest(client: Client, prefix: str, dom: str, **kwargs: object) -> list[sg.Suggestion]:
    request = sg.SuggestRequest(prefix=prefix, domains=[dom], **kwargs)  # type: ignore[arg-type]
    return list(client.suggestions.Suggest(request, timeout=30).suggestions)


def marked(s: sg.Suggestion) -> list[tuple[str, str, int]]:
    return [(s.phrase[x.start : x.end], x.typed_word, x.edits) for x in s.spans]


def test_suggestion_service_reports_serving(client: Client) -> None:
    health = health_pb2_grpc.HealthStub(client.channel)
    reply = health.Check(
        health_pb2.HealthCheckRequest(service="embedding_studio.v1.SuggestionService"),
        timeout=30,
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_phrases_are_added_updated_listed_suggested_and_deleted(client: Client) -> None:
    shop, other = domain(), domain()
    ids = add(
        client,
        sg.PhraseInput(phrase="Red Waterproof Headphones", weight=3, domains=[shop]),
        sg.PhraseInput(phrase="waterproof jacket", weight=2, domains=[shop], labels=["outdoor"]),
        sg.PhraseInput(phrase="wireless headphones", weight=1, domains=[shop]),
        sg.PhraseInput(phrase="red wine", domain=other),
    )
    assert len(set(ids)) == 4
    # the same phrase again (case aside) keeps its id
    assert add(client, sg.PhraseInput(phrase="RED WINE", weight=7, domains=[other])) == [ids[3]]

    got = client.suggestions.GetPhrases(sg.GetPhrasesRequest(phrase_ids=[ids[3], ids[0]]))
    assert [(p.phrase, p.weight, list(p.domains), p.domain) for p in got.phrases] == [
        ("red wine", 7.0, [other], other),
        ("Red Waterproof Headphones", 3.0, [shop], shop),
    ]

    # prefix, with spans over the stored text
    [hit] = suggest(client, "red wat", shop)
    assert hit.phrase == "Red Waterproof Headphones"
    assert hit.match_type == sg.MATCH_TYPE_PREFIX
    assert marked(hit) == [("Red", "red", 0), ("Wat", "wat", 0)]
    # mid-phrase
    mid = suggest(client, "waterproof he", shop)
    assert [(s.phrase, s.match_type) for s in mid] == [
        ("Red Waterproof Headphones", sg.MATCH_TYPE_MID_PHRASE)
    ]
    assert marked(mid[0]) == [("Waterproof", "waterproof", 0), ("He", "he", 0)]
    # typos: one in a short word, two in a long one
    fuzzy = suggest(client, "wireles headphnes", shop)
    assert fuzzy[0].phrase == "wireless headphones"
    assert fuzzy[0].match_type == sg.MATCH_TYPE_FUZZY
    assert [x.edits for x in fuzzy[0].spans] == [1, 1]
    [two] = suggest(client, "watrprof jack", shop)
    assert two.phrase == "waterproof jacket" and [x.edits for x in two.spans] == [2, 0]
    # exact first, and match types narrow the answer
    exact = suggest(client, "red wine", other)
    assert [(s.phrase, s.match_type) for s in exact] == [("red wine", sg.MATCH_TYPE_EXACT)]
    only_mid = suggest(client, "headphones", shop, match_types=[sg.MATCH_TYPE_MID_PHRASE])
    assert [s.phrase for s in only_mid] == ["Red Waterproof Headphones", "wireless headphones"]
    # domains are respected; the deprecated single domain still works
    assert suggest(client, "red w", other)[0].phrase == "red wine"
    assert [s.phrase for s in suggest(client, "red w", shop)] == ["Red Waterproof Headphones"]
    deprecated = client.suggestions.Suggest(sg.SuggestRequest(prefix="red w", domain=other))
    assert [s.phrase for s in deprecated.suggestions] == ["red wine"]

    # partial update: weight, labels and domains added and removed
    updated = client.suggestions.UpdatePhrases(
        sg.UpdatePhrasesRequest(
            updates=[
                sg.PhraseUpdate(
                    phrase_id=ids[2],
                    weight=9,
                    labels=sg.StringSetEdit(add=["audio"]),
                    domains=sg.StringSetEdit(add=[other]),
                )
            ]
        )
    ).phrases
    assert [(p.weight, list(p.labels), list(p.domains)) for p in updated] == [
        (9.0, ["audio"], [shop, other])
    ]
    assert suggest(client, "wirel", other)[0].phrase == "wireless headphones"
    # replacement
    [replaced] = client.suggestions.UpdatePhrases(
        sg.UpdatePhrasesRequest(
            phrases=[sg.Phrase(phrase_id=ids[1], weight=5, labels=[], domains=[shop])]
        )
    ).phrases
    assert (replaced.phrase, replaced.weight, list(replaced.labels)) == (
        "waterproof jacket",
        5.0,
        [],
    )

    # listing in pages, and by label
    first = client.suggestions.ListPhrases(sg.ListPhrasesRequest(domains=[shop], page_size=2))
    assert len(first.phrases) == 2 and first.next_page_token
    rest = client.suggestions.ListPhrases(
        sg.ListPhrasesRequest(domains=[shop], page_size=2, page_token=first.next_page_token)
    )
    listed = [p.phrase for p in [*first.phrases, *rest.phrases]]
    assert listed == ["Red Waterproof Headphones", "waterproof jacket", "wireless headphones"]
    assert not rest.next_page_token
    audio = client.suggestions.ListPhrases(sg.ListPhrasesRequest(domains=[other], labels=["audio"]))
    assert [p.phrase for p in audio.phrases] == ["wireless headphones"]

    deleted = client.suggestions.DeletePhrases(sg.DeletePhrasesRequest(phrase_ids=ids))
    assert deleted.deleted_count == 4
    assert suggest(client, "red w", shop) == []
    missing = client.suggestions.GetPhrases(sg.GetPhrasesRequest(phrase_ids=ids))
    assert list(missing.phrases) == []


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(sg.SuggestRequest(), "prefix", id="empty-prefix"),
        pytest.param(sg.SuggestRequest(prefix="x" * 257), "prefix", id="long-prefix"),
        pytest.param(sg.SuggestRequest(prefix="a\x00b"), "prefix", id="nul-prefix"),
        pytest.param(
            sg.SuggestRequest(prefix="red", domains=[f"d{i}" for i in range(33)]),
            "domains",
            id="too-many-domains",
        ),
        pytest.param(
            sg.SuggestRequest(prefix="red", domains=["a", "b", "c", "d\x00"]),
            "domains[3]",
            id="nul-domain",
        ),
        pytest.param(
            sg.SuggestRequest(prefix="red", match_types=[sg.MATCH_TYPE_UNSPECIFIED]),
            "match_types[0]",
            id="unspecified-match-type",
        ),
        pytest.param(
            sg.SuggestRequest(prefix="red", match_types=[2, 42]),  # type: ignore[list-item]
            "match_types[1]",
            id="unknown-match-type",
        ),
        pytest.param(sg.SuggestRequest(prefix="red", max_edits=3), "max_edits", id="max-edits"),
        pytest.param(sg.SuggestRequest(prefix="red", limit=101), "limit", id="limit"),
        pytest.param(
            sg.SuggestRequest(prefix="red", domain="a", domains=["b"]), "domain", id="both-domains"
        ),
    ],
)
def test_bad_suggest_requests_name_the_field(
    client: Client, request_message: sg.SuggestRequest, field: str
) -> None:
    expect_error(lambda: client.suggestions.Suggest(request_message, timeout=30), BAD, field)


def test_bad_phrase_requests_name_the_field(client: Client) -> None:
    s = client.suggestions
    cases = [
        (lambda: s.AddPhrases(sg.AddPhrasesRequest()), "phrases"),
        (
            lambda: s.AddPhrases(
                sg.AddPhrasesRequest(phrases=[sg.PhraseInput(phrase="ok"), sg.PhraseInput()])
            ),
            "phrases[1].phrase",
        ),
        (
            lambda: s.AddPhrases(
                sg.AddPhrasesRequest(phrases=[sg.PhraseInput(phrase="ok", labels=["x" * 65])])
            ),
            "phrases[0].labels[0]",
        ),
        (
            lambda: s.AddPhrases(
                sg.AddPhrasesRequest(
                    phrases=[sg.PhraseInput(phrase="ok", domain="a", domains=["b"])]
                )
            ),
            "phrases[0].domain",
        ),
        (lambda: s.GetPhrases(sg.GetPhrasesRequest()), "phrase_ids"),
        (lambda: s.DeletePhrases(sg.DeletePhrasesRequest(phrase_ids=[""])), "phrase_ids[0]"),
        (
            lambda: s.UpdatePhrases(
                sg.UpdatePhrasesRequest(
                    phrases=[sg.Phrase(phrase_id="a")], updates=[sg.PhraseUpdate(phrase_id="a")]
                )
            ),
            "updates",
        ),
        (
            lambda: s.UpdatePhrases(
                sg.UpdatePhrasesRequest(updates=[sg.PhraseUpdate(phrase_id="a", weight=-1)])
            ),
            "updates[0].weight",
        ),
        (lambda: s.ListPhrases(sg.ListPhrasesRequest(page_token="not-a-token")), "page_token"),
        (lambda: s.ListPhrases(sg.ListPhrasesRequest(page_size=-1)), "page_size"),
    ]
    for call, field in cases:
        expect_error(call, BAD, field)
    unknown = expect_error(
        lambda: s.UpdatePhrases(
            sg.UpdatePhrasesRequest(updates=[sg.PhraseUpdate(phrase_id="sg-none", weight=1)])
        ),
        grpc.StatusCode.NOT_FOUND,
        "updates[0].phrase_id",
    )
    assert "sg-none" in (unknown.details() or "")
