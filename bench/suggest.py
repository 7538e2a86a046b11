"""Suggest through gRPC against the same matching query run directly on asyncpg; typo recall.

    .venv/bin/python -m bench.suggest [--quick] [--phrases N] [--queries N] [--json out.json]

Phrases: a seeded vocabulary of pronounceable words (1-4 syllables of consonant clusters and
vowels, 3-12 letters) and distinct phrases of 2-5 of those words, the words drawn with Zipf's
law (a few words are very common, most are rare), each phrase with a Zipf weight (1 + 1000 /
rank, ranks shuffled). They are loaded through AddPhrases (1000 per call) from several
concurrent clients, then the three suggestion tables are vacuumed and analysed (what
autovacuum does soon after a bulk load; done here so timings do not depend on when it runs).

Queries, each made from a phrase drawn uniformly from the dictionary (its "intended" phrase):

- prefix: the phrase's first 0..n-1 words, then 2 or more letters of the next word;
- mid-phrase: from a later word on (a phrase of 3 or more words): at least one whole word, then
  2 or more letters of a following word;
- fuzzy, one typo: a prefix as above, grown letter by letter until it is unique (no other phrase
  starts with it, so the intended phrase is the one answer to the typing), then one typo
  (substitution, transposition of two different adjacent letters, deletion or insertion, at a
  random place) in one typed word that stays at least 4 letters long: the server tolerates one
  typo in words of 4-7 letters and two from 8 (``default_max_edits``; requests leave max_edits
  unset);
- fuzzy, two typos: likewise, with one typo in each of two such words, or both in one word
  that stays at least 8 letters long, at places at least 3 letters apart (so they cannot merge
  into one edit); a coin decides when both are possible.

A typo'd whole word is never itself a vocabulary word (it would be a correct word, not a typo).
The deletion of the last typed letter of the word being typed is not a typo (only a shorter
prefix), so it is not drawn. Even so, the typed text can be ambiguous: another phrase that
starts with words as close to what was typed (another word one edit from the typo, a prefix
the typo'd partial word happens to spell) can rank above the intended phrase by weight; the
recall figures count such cases as misses.

Every kind is run from ``--clients`` concurrent clients: gRPC ``Suggest`` (limit 10, all match
types, the default domain; one grpc.aio channel per client), then ``matching.suggest``
(the server's own queries, as ``use_case.suggest`` runs them) on an asyncpg
pool made by ``create_pool`` with the search role's session settings and the server's search
pool size. Recall@5: the intended phrase among the first 5 gRPC suggestions.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import grpc
import numpy as np

from bench.common import Row, base_parser, percentile_ms, report, running_stack
from embedding_studio.client import AsyncClient
from embedding_studio.v1 import suggestion_pb2
from es_core.config import Settings
from es_core.storage.db import create_pool
from es_core.suggestions import matching
from es_core.suggestions.model import MatchType

LIMIT = 10
RECALL_AT = 5
BATCH = 1000
TARGET_P50_MS = 20.0
TARGET_RATIO = 1.3
TARGET_RECALL = {"fuzzy 1 typo": 0.95, "fuzzy 2 typos": 0.8}
KINDS = ("prefix", "fuzzy 1 typo", "fuzzy 2 typos", "mid-phrase")

ONSETS = "b c d f g h j k l m n p r s t v w z br cl dr fl gr pl st tr sh ch th".split() + [""]
NUCLEI = "a e i o u a e o ai ea ou ie".split()
CODAS = ["", "", "", "n", "r", "s", "l", "m", "t", "nd", "st", "ck", "x"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """``size`` distinct pronounceable words of 3-12 letters, in Zipf rank order."""
    words: dict[str, None] = {}
    while len(words) < size:
        syllables = int(rng.choice([1, 2, 3, 4], p=[0.3, 0.5, 0.17, 0.03]))
        word = "".join(
            ONSETS[rng.integers(len(ONSETS))]
            + NUCLEI[rng.integers(len(NUCLEI))]
            + CODAS[rng.integers(len(CODAS))]
            for _ in range(syllables)
        )
        if 3 <= len(word) <= 12:
            words[word] = None
    return list(words)


def phrases(rng: np.random.Generator, vocab: list[str], n: int) -> tuple[list[str], list[float]]:
    """``n`` distinct phrases of 2-5 words (Zipf-Mandelbrot word choice) and their weights."""
    ranks = np.arange(len(vocab), dtype=np.float64)
    p = (ranks + 2.7) ** -1.0
    p /= p.sum()
    found: dict[str, None] = {}
    while len(found) < n:
        todo = int((n - len(found)) * 1.2) + 100
        lengths = rng.choice([2, 3, 4, 5], size=todo, p=[0.35, 0.35, 0.2, 0.1])
        words = rng.choice(len(vocab), size=(todo, 5), p=p)
        for length, row in zip(lengths, words, strict=True):
            found[" ".join(vocab[w] for w in row[:length])] = None
            if len(found) == n:
                break
    texts = list(found)
    weights = 1.0 + 1000.0 / (rng.permutation(n) + 1.0)
    return texts, [round(float(w), 4) for w in weights]


@dataclass(frozen=True)
class Query:
    typed: str
    intended: str


class QueryMaker:
    """Seeded queries of each kind from a dictionary (see the module docstring)."""

    def __init__(self, rng: np.random.Generator, texts: list[str], vocab: list[str]) -> None:
        self.rng = rng
        self.texts = texts
        self.sorted = sorted(texts)
        self.vocab = set(vocab)

    def _phrase(self, min_words: int = 2) -> list[str]:
        while True:
            words = self.texts[self.rng.integers(len(self.texts))].split()
            if len(words) >= min_words:
                return words

    def _partial(self, word: str) -> str:
        return word[: int(self.rng.integers(min(2, len(word)), len(word) + 1))]

    def prefix(self) -> Query:
        words = self._phrase()
        j = int(self.rng.integers(0, len(words)))
        return Query(" ".join([*words[:j], self._partial(words[j])]), " ".join(words))

    def mid_phrase(self) -> Query:
        words = self._phrase(3)
        start = int(self.rng.integers(1, len(words) - 1))
        last = int(self.rng.integers(start + 1, len(words)))
        typed = [*words[start:last], self._partial(words[last])]
        return Query(" ".join(typed), " ".join(words))

    def _starts_with(self, typed: str) -> int:
        lo = bisect.bisect_left(self.sorted, typed)
        return bisect.bisect_left(self.sorted, typed + "\U0010ffff", lo) - lo

    def _unique_prefix(self, words: list[str]) -> list[str] | None:
        """A random cut of the phrase, lengthened until only this phrase starts with it."""
        text = " ".join(words)
        start = int(self.rng.integers(len(words[0]), len(text) + 1))
        for end in range(start, len(text) + 1):
            if text[end - 1] != " " and self._starts_with(text[:end]) == 1:
                return text[:end].split()
        return None

    def _typo(self, word: str, is_partial: bool, avoid: set[int]) -> tuple[str, int] | None:
        """One random typo in ``word`` and its place (None if the result is not a usable
        typo, or the place is within 2 letters of one in ``avoid``)."""
        kinds = ["substitute", "transpose", "delete", "insert"]
        kind = kinds[self.rng.integers(len(kinds))]
        i = int(self.rng.integers(len(word)))
        if any(abs(i - a) < 3 for a in avoid):
            return None
        if kind == "substitute":
            out = word[:i] + LETTERS[self.rng.integers(26)] + word[i + 1 :]
        elif kind == "transpose":
            if i + 1 >= len(word) or word[i] == word[i + 1]:
                return None
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif kind == "delete":
            if is_partial and i == len(word) - 1:
                return None
            out = word[:i] + word[i + 1 :]
        else:
            out = word[:i] + LETTERS[self.rng.integers(26)] + word[i:]
        if out == word or (not is_partial and out in self.vocab):
            return None
        return out, i

    def _typo_into(self, word: str, is_partial: bool, typos: int, min_len: int) -> str | None:
        for _ in range(20):
            out: str | None = word
            avoid: set[int] = set()
            for _ in range(typos):
                assert out is not None
                typo = self._typo(out, is_partial, avoid)
                if typo is None:
                    out = None
                    break
                out, place = typo
                avoid.add(place)
            if out is not None and len(out) >= min_len and out != word:
                return out
        return None

    def fuzzy(self, typos: int) -> Query:
        while True:
            words = self._phrase()
            cut = self._unique_prefix(words)
            if cut is None:
                continue
            last = len(cut) - 1
            # Words that may take one typo and still be allowed one by the server.
            one = [i for i, w in enumerate(cut) if len(w) >= 5 or (len(w) == 4 and i == last)]
            self.rng.shuffle(one)
            typed = list(cut)
            if typos == 1 and one:
                out = self._typo_into(cut[one[0]], one[0] == last, 1, 4)
                if out is None:
                    continue
                typed[one[0]] = out
            elif typos == 2:
                long_ones = [i for i, w in enumerate(cut) if len(w) >= 9]
                if len(one) >= 2 and (not long_ones or self.rng.random() < 0.5):
                    outs = [self._typo_into(cut[i], i == last, 1, 4) for i in one[:2]]
                    if any(o is None for o in outs):
                        continue
                    for i, o in zip(one[:2], outs, strict=True):
                        assert o is not None
                        typed[i] = o
                elif long_ones:
                    i = long_ones[int(self.rng.integers(len(long_ones)))]
                    out = self._typo_into(cut[i], i == last, 2, 8)
                    if out is None:
                        continue
                    typed[i] = out
                else:
                    continue
            else:
                continue
            return Query(" ".join(typed), " ".join(words))

    def make(self, kind: str, n: int) -> list[Query]:
        make: Callable[[], Query] = {
            "prefix": self.prefix,
            "mid-phrase": self.mid_phrase,
            "fuzzy 1 typo": lambda: self.fuzzy(1),
            "fuzzy 2 typos": lambda: self.fuzzy(2),
        }[kind]
        return [make() for _ in range(n)]


async def load(clients: Sequence[AsyncClient], texts: list[str], weights: list[float]) -> float:
    """AddPhrases in batches of 1000, one call in flight per client; returns seconds. A call
    that fails as UNAVAILABLE or ABORTED is sent again (adding is idempotent)."""
    batches = iter(range(0, len(texts), BATCH))
    done = 0

    async def client_loop(client: AsyncClient) -> None:
        nonlocal done
        for start in batches:
            request = suggestion_pb2.AddPhrasesRequest(
                phrases=[
                    suggestion_pb2.PhraseInput(phrase=t, weight=w)
                    for t, w in zip(
                        texts[start : start + BATCH], weights[start : start + BATCH], strict=True
                    )
                ]
            )
            for attempt in range(5):
                try:
                    await client.suggestions.AddPhrases(request, timeout=300)
                    break
                except grpc.aio.AioRpcError as exc:
                    retry = exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
                    if not retry or attempt == 4:
                        raise
                    print(f"AddPhrases at {start}: {exc.code().name}, sending again")
                    await asyncio.sleep(1.0)
            done += len(request.phrases)
            if done % 100_000 < BATCH:
                print(f"  {done:,} phrases added")

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in clients))
    return time.perf_counter() - started


Answer = list[tuple[str, int]]  # (phrase, match type) best first
Suggest = Callable[[str], Awaitable[Answer]]


async def run(
    suggesters: Sequence[Suggest], queries: Sequence[Query]
) -> tuple[list[float], float, list[Answer]]:
    """Each concurrent client takes the next query until none are left."""
    latencies = [0.0] * len(queries)
    answers: list[Answer] = [[] for _ in queries]
    todo = iter(range(len(queries)))

    async def client_loop(suggest: Suggest) -> None:
        for i in todo:
            t = time.perf_counter()
            answers[i] = await suggest(queries[i].typed)
            latencies[i] = time.perf_counter() - t

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(s) for s in suggesters))
    return latencies, time.perf_counter() - started, answers


def grpc_suggester(client: AsyncClient) -> Suggest:
    async def suggest(typed: str) -> Answer:
        reply = await client.suggestions.Suggest(
            suggestion_pb2.SuggestRequest(prefix=typed, limit=LIMIT), timeout=60
        )
        return [(s.phrase, int(s.match_type)) for s in reply.suggestions]

    return suggest


def direct_suggester(pool: asyncpg.Pool) -> Suggest:
    """The server's Suggest query, as ``use_case.suggest`` runs it, without gRPC."""
    allowed = set(MatchType)

    async def suggest(typed: str) -> Answer:
        words = matching.typed_words(typed, None, True)
        async with pool.acquire() as conn:
            got = await matching.suggest(conn, typed, words, [""], allowed, LIMIT)
        return [(s.phrase.phrase, int(s.match_type)) for s in got]

    return suggest


@dataclass
class KindResult:
    grpc_p50: float
    grpc_p99: float
    grpc_qps: float
    direct_p50: float
    direct_p99: float
    direct_qps: float
    recall: float
    same_answers: int
    top_match_types: dict[str, int]


def stats(latencies: list[float], wall: float) -> tuple[float, float, float]:
    return percentile_ms(latencies, 50), percentile_ms(latencies, 99), len(latencies) / wall


async def measure(
    kind: str,
    queries: list[Query],
    warm: list[Query],
    grpc_side: list[Suggest],
    direct_side: list[Suggest],
) -> KindResult:
    await run(grpc_side, warm)
    g_lat, g_wall, g_answers = await run(grpc_side, queries)
    await run(direct_side, warm)
    d_lat, d_wall, d_answers = await run(direct_side, queries)
    g50, g99, gqps = stats(g_lat, g_wall)
    d50, d99, dqps = stats(d_lat, d_wall)
    hits = sum(
        q.intended in [p for p, _ in a[:RECALL_AT]] for q, a in zip(queries, g_answers, strict=True)
    )
    same = sum(
        [p for p, _ in g] == [p for p, _ in d] for g, d in zip(g_answers, d_answers, strict=True)
    )
    top: dict[str, int] = {}
    for a in g_answers:
        name = MatchType(a[0][1]).name if a else "none"
        top[name] = top.get(name, 0) + 1
    result = KindResult(g50, g99, gqps, d50, d99, dqps, hits / len(queries), same, top)
    print(
        f"{kind}: gRPC p50 {g50:.2f} ms p99 {g99:.2f} ms {gqps:.0f} QPS;"
        f" direct p50 {d50:.2f} ms p99 {d99:.2f} ms {dqps:.0f} QPS;"
        f" recall@{RECALL_AT} {result.recall:.3f}; same answers {same}/{len(queries)};"
        f" top match types {top}"
    )
    by_words: dict[str, list[float]] = {}
    for q, latency in zip(queries, g_lat, strict=True):
        by_words.setdefault("1 word" if len(q.typed.split()) == 1 else "2+ words", []).append(
            latency
        )
    for shape, lat in sorted(by_words.items()):
        print(
            f"    typed {shape}: {len(lat)} queries, gRPC p50 {percentile_ms(lat, 50):.2f} ms"
            f" p99 {percentile_ms(lat, 99):.2f} ms"
        )
    for q, a in list(zip(queries, g_answers, strict=True))[:3]:
        print(f"    {q.typed!r} (intended {q.intended!r}) -> {a[0][0] if a else None!r}")
    misses = [
        (q, a)
        for q, a in zip(queries, g_answers, strict=True)
        if q.intended not in [p for p, _ in a[:RECALL_AT]]
    ]
    for q, a in misses[:3]:
        print(f"    missed: {q.typed!r} (intended {q.intended!r}) -> {[p for p, _ in a[:3]]}")
    return result


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def main_async(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    vocab = vocabulary(rng, args.vocabulary)
    texts, weights = phrases(rng, vocab, args.phrases)
    maker = QueryMaker(rng, texts, vocab)
    queries = {k: maker.make(k, args.queries) for k in KINDS}
    warm = {k: maker.make(k, args.warmup) for k in KINDS}
    lengths = np.array([len(w) for w in vocab])
    print(
        f"{len(vocab):,} words (mean {lengths.mean():.1f} letters), {len(texts):,} phrases and"
        f" {args.queries} queries per kind made in {time.perf_counter() - started:.1f} s"
    )
    settings = Settings()
    pool_size = args.direct_pool or settings.db_search_pool_max_size
    rows: list[Row] = []
    results: dict[str, KindResult] = {}
    with running_stack() as stack:
        clients = [AsyncClient(stack.grpc_address) for _ in range(max(args.clients, args.loaders))]
        pool = await create_pool(settings, stack.postgres_dsn, role="search", max_size=pool_size)
        try:
            seconds = await load(clients[: args.loaders], texts, weights)
            rate = len(texts) / seconds
            print(f"loaded {len(texts):,} phrases in {seconds:.1f} s = {rate:,.0f} phrases/s")
            rows += [Row("load: phrases/s (AddPhrases)", rate), Row("load: seconds", seconds)]
            t = time.perf_counter()
            async with pool.acquire() as conn:
                for table in ("suggestion_phrases", "suggestion_words", "suggestion_word_keys"):
                    await conn.execute(f"VACUUM ANALYZE {table}", timeout=3600)
                words = await conn.fetchval("SELECT count(*) FROM suggestion_words")
            print(f"vacuum analyze in {time.perf_counter() - t:.1f} s; {words:,} stored words")
            grpc_side = [grpc_suggester(c) for c in clients[: args.clients]]
            direct_side = [direct_suggester(pool)] * args.clients
            for kind in KINDS:
                results[kind] = await measure(
                    kind, queries[kind], warm[kind], grpc_side, direct_side
                )
        finally:
            await pool.close()
            for c in clients:
                await c.close()

    base_name = f"direct SQL ({pool_size} asyncpg conns)"
    checks: list[tuple[str, bool]] = []
    for kind, r in results.items():
        rows += [
            Row(f"{kind}: p50 ms", r.grpc_p50, r.direct_p50, base_name),
            Row(f"{kind}: p99 ms", r.grpc_p99, r.direct_p99, base_name),
            Row(f"{kind}: QPS", r.grpc_qps, r.direct_qps, base_name),
            Row(f"{kind}: recall@{RECALL_AT} of the intended phrase", r.recall),
            Row(f"{kind}: answers equal to direct", r.same_answers, len(queries[kind]), "queries"),
        ]
        checks += [
            (f"{kind}: gRPC p50 < {TARGET_P50_MS:g} ms", r.grpc_p50 < TARGET_P50_MS),
            (
                f"{kind}: gRPC/direct p50 ratio <= {TARGET_RATIO}",
                r.grpc_p50 <= TARGET_RATIO * r.direct_p50,
            ),
            (
                f"{kind}: gRPC/direct p99 ratio <= {TARGET_RATIO}",
                r.grpc_p99 <= TARGET_RATIO * r.direct_p99,
            ),
        ]
        if kind in TARGET_RECALL:
            checks.append(
                (
                    f"{kind}: recall@{RECALL_AT} >= {TARGET_RECALL[kind]}",
                    r.recall >= TARGET_RECALL[kind],
                )
            )
    report(
        f"suggest: {len(texts):,} phrases, {args.queries} queries per kind after {args.warmup}"
        f" warm-up, {args.clients} concurrent clients (one grpc.aio channel each), limit {LIMIT}",
        rows,
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "targets": {name: ok for name, ok in checks},
            "top_match_types": {k: r.top_match_types for k, r in results.items()},
        },
    )
    print("\ntargets (issue 14):")
    for name, ok in checks:
        print(f"  {verdict(ok):>7}  {name}")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "suggest benchmark")
    parser.add_argument("--phrases", type=int, help="phrases to load (1000000; quick 50000)")
    parser.add_argument("--queries", type=int, help="timed queries per kind (1000; quick 200)")
    parser.add_argument("--warmup", type=int, help="untimed queries per kind (100; quick 20)")
    parser.add_argument("--vocabulary", type=int, default=8000, help="distinct words")
    parser.add_argument("--clients", type=int, default=8, help="concurrent Suggest clients")
    parser.add_argument("--loaders", type=int, default=4, help="concurrent AddPhrases clients")
    parser.add_argument(
        "--direct-pool", type=int, default=0, help="direct pool size (0 = the server's search pool)"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    for name, full, quick in [
        ("phrases", 1_000_000, 50_000),
        ("queries", 1000, 200),
        ("warmup", 100, 20),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
