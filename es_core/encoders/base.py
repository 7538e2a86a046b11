"""The seam between the platform and whatever runs the model."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Encodes queries and items of one model version into float32 rows of ``dimensions``."""

    @property
    def dimensions(self) -> int: ...

    def encode_queries(self, texts: list[str]) -> Vectors: ...

    def encode_items(self, texts: list[str]) -> Vectors: ...
