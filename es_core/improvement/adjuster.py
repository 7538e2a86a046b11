"""Per-user vector adjustment from clicks: the seed's TorchBasedAdjuster, batched across sessions.

Each session says: this user, searching with ``query_vector``, clicked some of the shown objects
and skipped the others. The part vectors of every (user_id, object_id) a session shows are moved
so that the query gets closer to the clicked objects and farther from the skipped ones, by AdamW
on the cubic loss ``-mean(w_c * sim_clicked**3) + mean(sim_not_clicked**3)`` (the query vectors
stay fixed). The caller stores the result as that user's copy of the object, and passes the copy
back in ``items`` the next time, so adjustments accumulate per user.

Two guards keep a noise click (a click on an irrelevant result) cheap:

- the skip floor: a passed-over result is pushed only while it still scores above the lowest
  clicked result of its session as the session found it (``relu(sim - floor)**3`` instead of
  ``sim**3``), and if Adam's momentum carried it below anyway it is moved back along its path
  to the floor. A relevant result skipped above a noise click therefore ends no lower than
  where the noise click was, still inside the shown page, instead of being pushed out of it;
- the trust region: after every optimiser step each part is pulled back to within
  ``max_step`` (L2) of where it was when the call started, so one adjustment, whatever its clicks,
  moves a vector by a bounded amount (Adam's momentum otherwise keeps moving a part for steps
  after its gradient vanished).

In ``adjust`` an object that is skipped in one session and clicked in another of the same batch
is moved back as a whole (its pull with it) if a skip floor needs it; the back-off costs up to
``_BISECTIONS`` gradient-free passes, and only when some skipped result ended below its floor.

``adjust`` runs ONE optimisation for all sessions: the touched objects' parts are padded into one
``[objects, max_parts, d]`` tensor with a mask, every (session, shown object) pair is scored in
one vectorised pass, and the total loss is the sum of the sessions' losses, so an object's
gradient comes only from the sessions that show it. AdamW works element by element, so when no
(user_id, object_id) is shared between sessions this equals ``adjust_one_by_one`` (a plain
per-session loop, kept as the readable reference and the benchmark's baseline) up to rounding.

Numpy in, numpy out; torch inside; no database, no randomness.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, get_args

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from es_core.config import Settings as EsSettings
from es_core.domain import Aggregation, Metric

_DTYPE = torch.float64
"""Inside the optimisation. The cubic loss has a zero gradient at similarity 0, and Adam divides
by the gradient's own size, so for a shown object nearly orthogonal to the query float32 rounding
(which depends on how the work is batched) grew to 2.5e-2 within 10 steps at rate 0.1 in the
benchmark; float64 keeps a session's result independent of the batch it was adjusted in."""

_BISECTIONS = 30
"""Steps of the skip floor's back-off: the point is found to within 2**-30 of the line."""

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
    - ``max_step`` = 0.2: the trust region, the most one call may move a part (L2 norm of the
      change; under cosine before the final re-normalisation, so the chord between the old and
      new unit part is at most ``sqrt(2 - 2 * sqrt(1 - max_step**2))``). ``inf`` turns it off.
      At the rate above one session moves a 384-d part by about 0.14, so 0.2 rarely binds on a
      single session; it binds when a batch holds many sessions of one user on one object, or
      when the rate or the iterations are raised (the seed's 0.1 moved parts by ~16).
    - ``skip_floor`` = True: push passed-over results only down to the session's lowest clicked
      result, never below (see the module docstring); False is the seed's unbounded push. On
      SciFact (bench.quality_personalization --quick --clickers 8) the seed's push cost a
      relevant result its place in the top 10 in 5 of 31 sessions with a noise click.
    - ``weight_decay`` = 0.0: decay pulls every touched vector towards zero, which changes scores
      under dot and euclidean for reasons unrelated to the clicks (and is undone by the final
      re-normalisation under cosine).
    """

    adjustment_rate: float = 0.001
    num_iterations: int = 10
    softmin_temperature: float = 1.0
    weight_decay: float = 0.0
    max_step: float = 0.2
    skip_floor: bool = True

    def __post_init__(self) -> None:
        if not (np.isfinite(self.adjustment_rate) and self.adjustment_rate > 0):
            raise ValueError(f"adjustment_rate must be > 0, got {self.adjustment_rate}")
        if self.num_iterations < 0:
            raise ValueError(f"num_iterations must be >= 0, got {self.num_iterations}")
        if not (np.isfinite(self.softmin_temperature) and self.softmin_temperature > 0):
            raise ValueError(f"softmin_temperature must be > 0, got {self.softmin_temperature}")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.max_step > 0:  # inf is allowed: no trust region; also rejects NaN
            raise ValueError(f"max_step must be > 0, got {self.max_step}")


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

    start = torch.from_numpy(init).to(_DTYPE)
    params = start.clone().requires_grad_(True)  # [K, M, d]
    optimizer = _optimizer([params], settings)
    # Usually every object is shown in one session only: pairs and objects are then the same rows
    # in the same order (both follow first appearance), and the gather (a copy) can be skipped.
    same_rows = pair_keys.shape[0] == len(prep.keys) and bool(
        (pair_keys == torch.arange(len(prep.keys))).all()
    )

    def item_similarities(vectors: torch.Tensor) -> torch.Tensor:  # [P]
        parts = vectors if same_rows else vectors[pair_keys]  # [P, M, d]
        sims = _part_similarity(pair_queries, parts, metric)  # [P, M]
        return _aggregate_masked(sims, pair_mask, aggregation, settings.softmin_temperature)

    # The skip floor of each skipped pair: its session's lowest clicked similarity at the start
    # (-inf where there is none: a clicked pair, a session without clicks, the floor turned off).
    # The back-off holds a pair to that floor, or to its own start if it began lower.
    floors = torch.full((len(pair_coef),), float("-inf"), dtype=_DTYPE)
    back_off_floors = floors
    if settings.skip_floor:
        clicked = coef < 0
        session_of = torch.tensor(pair_session, dtype=torch.long)
        with torch.no_grad():
            start_sims = item_similarities(start)
        lowest = torch.full((len(prep.sessions),), float("inf"), dtype=_DTYPE)
        lowest = lowest.scatter_reduce(0, session_of[clicked], start_sims[clicked], "amin")
        floors = torch.where(clicked, floors, lowest[session_of])
        floors = floors.masked_fill(torch.isinf(floors), float("-inf"))
        back_off_floors = torch.minimum(floors, start_sims)
    for _ in range(settings.num_iterations):
        optimizer.zero_grad()
        loss = (coef * _cubic(item_similarities(params), floors)).sum()
        torch.autograd.backward(loss)
        optimizer.step()
        _trust_region(params, start, settings.max_step)

    def keys_above_floors(vectors: torch.Tensor) -> torch.Tensor:  # [K] bool
        below = item_similarities(vectors) < back_off_floors
        return torch.ones(len(prep.keys), dtype=torch.bool).index_fill(0, pair_keys[below], False)

    with torch.no_grad():
        params = _back_off(start, params.detach(), keys_above_floors)
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
        start = {key: torch.tensor(current[key], dtype=_DTYPE) for key in keys}
        params = {key: vectors.clone().requires_grad_(True) for key, vectors in start.items()}
        query = torch.from_numpy(session.query).to(_DTYPE)
        weights = torch.tensor(session.clicked_weights, dtype=_DTYPE)

        # Defaults bind this session's query and parameters (the functions live in the loop).
        def similarity(parts: torch.Tensor, query: torch.Tensor = query) -> torch.Tensor:
            return _item_similarity(query, parts, metric, aggregation, settings)

        def similarities(
            objects: list[Key], params: dict[Key, torch.Tensor] = params
        ) -> torch.Tensor:
            return torch.stack([similarity(params[k]) for k in objects])

        floor = torch.tensor(float("-inf"), dtype=_DTYPE)
        if settings.skip_floor and session.clicked:
            with torch.no_grad():
                floor = similarities(session.clicked).min()
        optimizer = _optimizer(list(params.values()), settings)
        for _ in range(settings.num_iterations):
            optimizer.zero_grad()
            loss = torch.zeros((), dtype=_DTYPE)
            if session.clicked:
                loss = loss - (weights * similarities(session.clicked) ** 3).mean()
            if session.not_clicked:
                loss = loss + _cubic(similarities(session.not_clicked), floor).mean()
            torch.autograd.backward(loss)
            optimizer.step()
            for key, param in params.items():
                _trust_region(param, start[key], settings.max_step)
        if torch.isfinite(floor):
            with torch.no_grad():
                for key in session.not_clicked:
                    own = torch.minimum(floor, similarity(start[key]))

                    def above(
                        vectors: torch.Tensor,
                        own: torch.Tensor = own,
                        sim: Callable[[torch.Tensor], torch.Tensor] = similarity,
                    ) -> torch.Tensor:
                        return (sim(vectors[0]) >= own).reshape(1)

                    params[key] = _back_off(start[key][None], params[key][None], above)[0]
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


def _cubic(sims: torch.Tensor, floors: torch.Tensor) -> torch.Tensor:
    """``sims**3``, or where a floor is set (not -inf) ``relu(sims - floor)**3``: the skip hinge.

    The floor is replaced by 0 where it is not set before subtracting, so that no infinity
    reaches the backward pass (``where`` would turn its zero gradient into NaN)."""
    hinged = torch.isfinite(floors)
    safe = torch.where(hinged, floors, torch.zeros_like(floors))
    return torch.where(hinged, F.relu(sims - safe) ** 3, sims**3)


def _trust_region(params: torch.Tensor, start: torch.Tensor, max_step: float) -> None:
    """Pull every part (last dimension) of ``params`` back to within ``max_step`` of ``start``."""
    if not np.isfinite(max_step):
        return
    with torch.no_grad():
        change = params - start
        norms = torch.linalg.vector_norm(change, dim=-1, keepdim=True)
        scale = (max_step / norms.clamp_min(1e-300)).clamp(max=1.0)
        params.copy_(start + change * scale)


def _back_off(
    start: torch.Tensor, end: torch.Tensor, above_floors: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """``end``, except that every object (first dimension) for which ``above_floors`` says False
    is moved back towards ``start``, to the farthest point of the line where it says True (found
    by bisection; the start itself passes). This makes the skip floor hold at the end whatever
    the optimiser's momentum did in its last steps."""
    keep = above_floors(end)
    if bool(keep.all()):
        return end
    shape = (-1,) + (1,) * (start.dim() - 1)
    low = torch.zeros(start.shape[0], dtype=start.dtype)
    high = torch.ones(start.shape[0], dtype=start.dtype)
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        ok = above_floors(start + middle.view(shape) * (end - start))
        low, high = torch.where(ok, middle, low), torch.where(ok, high, middle)
    t = torch.where(keep, torch.ones_like(low), low)
    return start + t.view(shape) * (end - start)


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
        max_step=settings.improvement_max_step,
        skip_floor=settings.improvement_skip_floor,
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
