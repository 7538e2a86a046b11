"""When ``es up`` restarts a child that died, and when it stops trying."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    """Exponential backoff per child; giving up at ``max_failures`` within ``window`` seconds."""

    backoff: float
    max_backoff: float
    max_failures: int
    window: float
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def failed(self, name: str, now: float) -> float | None:
        """Record that ``name`` died at ``now``: the seconds to wait before restarting it, or
        None when it failed too often to try again."""
        times = self._failures.setdefault(name, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.max_failures:
            return None
        return float(min(self.backoff * 2 ** (len(times) - 1), self.max_backoff))

    def failures(self, name: str) -> int:
        """How many times ``name`` died within the window, as of its last failure."""
        return len(self._failures.get(name, ()))
