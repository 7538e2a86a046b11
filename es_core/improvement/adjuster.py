"""Per-user vector adjustment from clicks: the seed's TorchBasedAdjuster, batched across sessions.

Each session says: this user, searching with ``query_vector``, clicked some of the shown objects
and skipped the others. The part vectors of every (user_id, object_id) a session shows are moved
so that the query gets closer to the clicked objects and farther from the skipped ones, by AdamW
on the cubic loss ``-mean(w_c * sim_clicked**3) + mean(sim_not_clicked**3)`` (the query vectors
stay fixed). The caller stores the result as that user's copy of the object, and passes the copy
back in ``items`` the next time, so adjustments accumulate per user.

``adjust`` runs ONE optimisation for all sessions: the touched objects' parts are padded into one
``[objects, max_parts, d]`` tensor with a mask, every (session, shown object) pair is scored in
one vectorised pass, and the total loss is the sum of the sessions' losses, so an object's
gradient comes only from the sessions that show it. AdamW works element by element, so when no
(user_id, object_id) is shared between sessions this equals ``adjust_one_by_one`` (a plain
per-session loop, kept as the readable reference and the benchmark's baseline) up to rounding.

Numpy in, numpy out; torch inside; no database, no randomness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from es_core.config import Settings as EsSettings

_DTYPE = torch.float64
"""Inside the optimisation. The cubic loss has a zero gradient at similarity 0, and Adam divides
by the gradient's own size, so for a shown object nearly orthogonal to the query float32 rounding
(which depends on how the work is batched) grew to 2.5e-2 within 10 steps at rate 0.1 in the
benchmark; float64 keeps a session's result independent of the batch it was adjusted in."""

Metric = Literal["cosine", "dot", "euclidean"]
Aggregation = Literal["min", "avg"]
Key = tuple[str, str]
"""(user_id, object_id): one user's copy of one object."""
Vectors = npt.NDArray[np.float32]
"""An object's part vectors, ``n_parts x d``."""


@dataclass(frozen=True)
class AdjusterSettings:
    """How far one adjustment moves the vectors.

    - ``adjustment_rate`` (AdamW learning rate) = 0.001, not the seed's 0.1. Adam moves every
      coordinate by about the rate per step whatever the gradient's size, so a part vector moves
      by up to ``rate * sqrt(d)`` per step. Measured on 384-d unit vectors, 10 shown objects, 10
      steps: at 0.1 the adjusted parts end up unrelated to the originals (cosine to the original
      ~0.0; dot/euclidean parts move by ~16, far beyond their unit length), so one session wipes
      the object's content for that user; at 0.001 the parts keep cosine ~0.99 to the originals,
      the clicked object's similarity to the query rises by ~0.14 and it ranks first among the
      shown ones in 99.5% of sessions. Repeated sessions accumulate in the per-user copy.
    - ``num_iterations`` = 10: the seed's value; with the rate above it bounds the movement.
    - ``softmin_temperature`` = 1.0: the seed's value. For MIN aggregation the item similarity is
      ``S = sum(softmax(sim / T) * sim)`` over parts, whose derivative for part i is
      ``w_i * (1 + (sim_i - S) / T)``: negative for a part more than T below S, and Adam turns
      even a tiny gradient into a full step, so a small T pushes the weaker parts of a clicked
      object away from the query (and pulls those of a skipped one closer). Similarities of unit
      vectors rarely spread by more than 1, so T = 1 keeps every part moving the right way; the
      price is that MIN then moves all parts about as much as AVG does (measured).
    - ``weight_decay`` = 0.0: decay pulls every touched vector towards zero, which changes scores
      under dot and euclidean for reasons unrelated to the clicks (and is undone by the final
      re-normalisation under cosine).
    """

    adjustment_rate: float = 0.001
    num_iterations: int = 10
    softmin_temperature: float = 1.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.adjustment_rate) and self.adjustment_rate > 0):
            raise ValueError(f"adjustment_rate must be > 0, got {self.adjustment_rate}")
        if self.num_iterations < 0:
            raise ValueError(f"num_iterations must be >= 0, got {self.num_iterations}")
        if not (np.isfinite(self.softmin_temperature) and self.softmin_temperature > 0):
            raise ValueError(f"softmin_temperature must be > 0, got {self.softmin_temperature}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class SessionExample:
    """One search session of one user: the query, what was clicked, what was shown and skipped.

    ``weights`` gives a weight per clicked object id (missing ones weigh 1.0). A session with no
    not-clicked objects only pulls the clicked ones closer; one with no clicks only pushes the
    shown ones away.
    """

    user_id: str
    query_vector: npt.NDArray[np.floating[Any]]
    clicked: list[str]
    not_clicked: list[str]
    weights: dict[str, float] | None = None


@dataclass
class _Session:
    """A validated session: query as float32, keys and loss coefficients of its shown objects."""

    query: npt.NDArray[np.float32]
    clicked: list[Key]
    clicked_weights: list[float]
    not_clicked: list[Key]


@dataclass
class _Prepared:
    dim: int
    keys: list[Key]  # every touched (user_id, object_id), in order of first appearance
    vectors: dict[Key, Vectors]  # float32 copies of their current parts
    sessions: list[_Session]


def adjust(
    sessions: Sequence[SessionExample],
    items: Mapping[Key, npt.NDArray[np.floating[Any]]],
    *,
    metric: Metric,
    aggregation: Aggregation,
    settings: AdjusterSettings | None = None,
) -> dict[Key, Vectors]:
    """Adjust the parts of every (user_id, object_id) the sessions show, all sessions at once.

    ``items[(user_id, object_id)]`` holds the object's current part vectors (``n_parts x d``) as
    that user sees them: the user's adjusted copy if there is one, else the shared original.
    Returns float32 arrays of the same shapes for exactly the touched keys (first-appearance
    order); under cosine every part has unit length. Raises ValueError on bad input.

    Memory is about ten float64 copies of ``[touched objects, max parts, d]`` (~1.4 GB for 2,000
    sessions of 10 shown 384-d objects with up to 3 parts), so split bigger batches.
    """
    settings = settings or AdjusterSettings()
    prep = _prepare(sessions, items, metric, aggregation)
    if not prep.keys:
        return {}
    index = {key: i for i, key in enumerate(prep.keys)}

    # All touched objects' parts padded into one parameter tensor, with a mask of real parts.
    max_parts = max(v.shape[0] for v in prep.vectors.values())
    init = np.zeros((len(prep.keys), max_parts, prep.dim), dtype=np.float32)
    part_mask = np.zeros((len(prep.keys), max_parts), dtype=bool)
    for i, key in enumerate(prep.keys):
        n = prep.vectors[key].shape[0]
        init[i, :n] = prep.vectors[key]
        part_mask[i, :n] = True

    # One row per (session, shown object); the coefficient folds the session's means and the
    # click weights in, so that sum(coef * sim**3) is the sum of the sessions' losses.
    pair_session: list[int] = []
    pair_key: list[int] = []
    pair_coef: list[float] = []
    for s, session in enumerate(prep.sessions):
        for key, w in zip(session.clicked, session.clicked_weights, strict=True):
            pair_session.append(s)
            pair_key.append(index[key])
            pair_coef.append(-w / len(session.clicked))
        for key in session.not_clicked:
            pair_session.append(s)
            pair_key.append(index[key])
            pair_coef.append(1.0 / len(session.not_clicked))

    queries = torch.from_numpy(np.stack([s.query for s in prep.sessions])).to(_DTYPE)
    pair_queries = queries[torch.tensor(pair_session, dtype=torch.long)]  # [P, d]
    pair_keys = torch.tensor(pair_key, dtype=torch.long)  # [P]
    coef = torch.tensor(pair_coef, dtype=_DTYPE)  # [P]
    pair_mask = torch.from_numpy(part_mask)[pair_keys]  # [P, M]

    params = torch.from_numpy(init).to(_DTYPE).requires_grad_(True)  # [K, M, d]
    optimizer = _optimizer([params], settings)
    # Usually every object is shown in one session only: pairs and objects are then the same rows
    # in the same order (both follow first appearance), and the gather (a copy) can be skipped.
    same_rows = pair_keys.shape[0] == len(prep.keys) and bool(
        (pair_keys == torch.arange(len(prep.keys))).all()
    )
    for _ in range(settings.num_iterations):
        optimizer.zero_grad()
        parts = params if same_rows else params[pair_keys]  # [P, M, d]
        sims = _part_similarity(pair_queries, parts, metric)  # [P, M]
        item_sims = _aggregate_masked(
            sims, pair_mask, aggregation, settings.softmin_temperature
        )  # [P]
        loss = (coef * item_sims**3).sum()
        torch.autograd.backward(loss)
        optimizer.step()

    adjusted = params.detach()
    if metric == "cosine":
        adjusted = F.normalize(adjusted, dim=-1)
    result = adjusted.to(torch.float32).numpy()
    return {
        key: np.array(result[i, : prep.vectors[key].shape[0]], dtype=np.float32)
        for i, key in enumerate(prep.keys)
    }


def adjust_one_by_one(
    sessions: Sequence[SessionExample],
    items: Mapping[Key, npt.NDArray[np.floating[Any]]],
    *,
    metric: Metric,
    aggregation: Aggregation,
    settings: AdjusterSettings | None = None,
) -> dict[Key, Vectors]:
    """The same algorithm as ``adjust``, one small optimisation per session, in order.

    Each session starts from the vectors the previous ones produced (and ends re-normalised under
    cosine). Same arguments, result and errors as ``adjust``; equal to it (up to rounding) when
    no (user_id, object_id) is shared between sessions.
    """
    settings = settings or AdjusterSettings()
    prep = _prepare(sessions, items, metric, aggregation)
    current = dict(prep.vectors)
    for session in prep.sessions:
        keys = list(dict.fromkeys([*session.clicked, *session.not_clicked]))
        if not keys:
            continue
        params = {key: torch.tensor(current[key], dtype=_DTYPE, requires_grad=True) for key in keys}
        query = torch.from_numpy(session.query).to(_DTYPE)
        weights = torch.tensor(session.clicked_weights, dtype=_DTYPE)
        optimizer = _optimizer(list(params.values()), settings)
        for _ in range(settings.num_iterations):
            optimizer.zero_grad()
            loss = torch.zeros((), dtype=_DTYPE)
            if session.clicked:
                clicked = torch.stack(
                    [
                        _item_similarity(query, params[k], metric, aggregation, settings)
                        for k in session.clicked
                    ]
                )
                loss = loss - (weights * clicked**3).mean()
            if session.not_clicked:
                not_clicked = torch.stack(
                    [
                        _item_similarity(query, params[k], metric, aggregation, settings)
                        for k in session.not_clicked
                    ]
                )
                loss = loss + (not_clicked**3).mean()
            torch.autograd.backward(loss)
            optimizer.step()
        for key, param in params.items():
            vectors = param.detach()
            if metric == "cosine":
                vectors = F.normalize(vectors, dim=-1)
            current[key] = vectors.to(torch.float32).numpy()
    return {key: current[key] for key in prep.keys}


def _optimizer(params: list[torch.Tensor], settings: AdjusterSettings) -> torch.optim.AdamW:
    # fused: one pass over the parameters per step instead of about ten.
    return torch.optim.AdamW(
        params, lr=settings.adjustment_rate, weight_decay=settings.weight_decay, fused=True
    )


def _part_similarity(query: torch.Tensor, parts: torch.Tensor, metric: Metric) -> torch.Tensor:
    """Similarity (larger = closer) of ``query [..., d]`` to each of ``parts [..., m, d]``."""
    if metric == "euclidean":
        distances: torch.Tensor = torch.linalg.vector_norm(parts - query.unsqueeze(-2), dim=-1)
        return -distances
    if metric == "cosine":
        # Divide the [..., m] dot products by the part norms rather than normalising the
        # [..., m, d] parts: the same value, a third of the full-size passes forward and back.
        norms: torch.Tensor = torch.linalg.vector_norm(parts, dim=-1)
        return _dot(F.normalize(query, dim=-1), parts) / norms.clamp_min(1e-12)
    return _dot(query, parts)


def _dot(query: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    # Multiply-and-sum beats matmul here: a batch of tiny matrix-vector products.
    dots: torch.Tensor = (parts * query.unsqueeze(-2)).sum(dim=-1)
    return dots


def _aggregate_masked(
    sims: torch.Tensor, mask: torch.Tensor, aggregation: Aggregation, temperature: float
) -> torch.Tensor:
    """Item similarity from part similarities ``[..., m]``, ignoring padded parts."""
    sims = sims.masked_fill(~mask, 0.0)
    if aggregation == "min":
        # Softmin over distances = softmax over similarities: a differentiable closest part.
        weights = torch.softmax((sims / temperature).masked_fill(~mask, float("-inf")), dim=-1)
        return (weights * sims).sum(dim=-1)
    return sims.sum(dim=-1) / mask.sum(dim=-1)


def _item_similarity(
    query: torch.Tensor,
    parts: torch.Tensor,
    metric: Metric,
    aggregation: Aggregation,
    settings: AdjusterSettings,
) -> torch.Tensor:
    """Similarity of one query ``[d]`` to one object's parts ``[m, d]`` (no padding)."""
    sims = _part_similarity(query, parts, metric)
    if aggregation == "min":
        weights = torch.softmax(sims / settings.softmin_temperature, dim=-1)
        return (weights * sims).sum()
    return sims.mean()


def _prepare(
    sessions: Sequence[SessionExample],
    items: Mapping[Key, npt.NDArray[np.floating[Any]]],
    metric: str,
    aggregation: str,
) -> _Prepared:
    """Check everything up front (before any work) and collect float32 copies of the parts."""
    if metric not in get_args(Metric):
        raise ValueError(f"metric must be one of {get_args(Metric)}, got {metric!r}")
    if aggregation not in get_args(Aggregation):
        raise ValueError(f"aggregation must be one of {get_args(Aggregation)}, got {aggregation!r}")
    dim = 0
    vectors: dict[Key, Vectors] = {}
    prepared: list[_Session] = []
    for s, session in enumerate(sessions):
        where = f"sessions[{s}]"
        query = np.asarray(session.query_vector, dtype=np.float32)
        if query.ndim != 1 or query.shape[0] == 0:
            raise ValueError(f"{where}.query_vector must be 1-D and non-empty, got {query.shape}")
        if dim == 0:
            dim = query.shape[0]
        elif query.shape[0] != dim:
            raise ValueError(
                f"{where}.query_vector has dimension {query.shape[0]}, expected {dim} "
                "(the dimension of sessions[0].query_vector)"
            )
        if not np.isfinite(query).all():
            raise ValueError(f"{where}.query_vector has non-finite values")

        shown = [*session.clicked, *session.not_clicked]
        if len(set(shown)) != len(shown):
            twice = sorted({o for o in shown if shown.count(o) > 1})
            raise ValueError(f"{where}: objects listed twice in clicked/not_clicked: {twice}")
        weights = session.weights or {}
        if extra := sorted(set(weights) - set(session.clicked)):
            raise ValueError(f"{where}.weights: objects that are not clicked: {extra}")
        for object_id, w in weights.items():
            if not (np.isfinite(w) and w >= 0):
                raise ValueError(f"{where}.weights[{object_id!r}] must be >= 0, got {w}")

        for field in ("clicked", "not_clicked"):
            for j, object_id in enumerate(getattr(session, field)):
                key = (session.user_id, object_id)
                if key in vectors:
                    continue
                if key not in items:
                    raise ValueError(
                        f"{where}.{field}[{j}]: unknown object: no vectors in items for "
                        f"(user_id={session.user_id!r}, object_id={object_id!r})"
                    )
                parts = np.array(items[key], dtype=np.float32)  # a copy: inputs stay untouched
                if parts.ndim != 2 or parts.shape[0] == 0:
                    raise ValueError(
                        f"items[{key!r}] must be n_parts x d with n_parts >= 1, got {parts.shape}"
                    )
                if parts.shape[1] != dim:
                    raise ValueError(
                        f"items[{key!r}] has dimension {parts.shape[1]}, but "
                        f"{where}.query_vector has dimension {dim}"
                    )
                if not np.isfinite(parts).all():
                    raise ValueError(f"items[{key!r}] has non-finite values")
                vectors[key] = parts

        prepared.append(
            _Session(
                query=query,
                clicked=[(session.user_id, o) for o in session.clicked],
                clicked_weights=[float(weights.get(o, 1.0)) for o in session.clicked],
                not_clicked=[(session.user_id, o) for o in session.not_clicked],
            )
        )
    return _Prepared(dim=dim, keys=list(vectors), vectors=vectors, sessions=prepared)


def adjuster_settings(settings: EsSettings) -> AdjusterSettings:
    """The adjuster's knobs from the platform's ``ES_IMPROVEMENT_*`` settings."""
    return AdjusterSettings(
        adjustment_rate=settings.improvement_adjustment_rate,
        num_iterations=settings.improvement_num_iterations,
        softmin_temperature=settings.improvement_softmin_temperature,
    )


class VectorsAdjuster(Protocol):
    """Moves item part vectors towards clicked and away from passed-over results, per user."""

    def adjust(
        self,
        sessions: Sequence[SessionExample],
        items: Mapping[Key, npt.NDArray[np.floating[Any]]],
        *,
        metric: Metric,
        aggregation: Aggregation,
    ) -> dict[Key, Vectors]: ...


class TorchAdjuster:
    """``adjust`` with fixed settings: the vectors adjuster of the built-in method."""

    def __init__(self, settings: AdjusterSettings) -> None:
        self._settings = settings

    def adjust(
        self,
        sessions: Sequence[SessionExample],
        items: Mapping[Key, npt.NDArray[np.floating[Any]]],
        *,
        metric: Metric,
        aggregation: Aggregation,
    ) -> dict[Key, Vectors]:
        return adjust(
            sessions, items, metric=metric, aggregation=aggregation, settings=self._settings
        )
