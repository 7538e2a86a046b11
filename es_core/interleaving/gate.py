"""What deploy_as_blue does with an interleaving verdict before its switch."""

from __future__ import annotations

from typing import Literal

from es_core.config import Settings
from es_core.interleaving.verdict import Verdict

Action = Literal["switch", "keep", "wait"]


def promotion_decision(
    verdict: Verdict, waited_seconds: float, settings: Settings
) -> tuple[Action, str]:
    """Switch when green is better; keep blue when blue is better, or when no verdict came
    within ES_INTERLEAVING_MAX_SESSIONS sessions or ES_INTERLEAVING_MAX_SECONDS; else wait.
    The text says why, with the verdict's figures."""
    figures = verdict.describe()
    if verdict.decision == "green_better":
        return "switch", figures
    if verdict.decision == "blue_better":
        return "keep", f"the interleaving verdict: {figures}"
    if verdict.sessions >= settings.interleaving_max_sessions:
        return "keep", (
            f"no interleaving verdict within {settings.interleaving_max_sessions} sessions"
            f" (ES_INTERLEAVING_MAX_SESSIONS), so blue is kept: {figures}"
        )
    if waited_seconds >= settings.interleaving_max_seconds:
        return "keep", (
            f"no interleaving verdict within {settings.interleaving_max_seconds:g} s"
            f" (ES_INTERLEAVING_MAX_SECONDS), so blue is kept: {figures}"
        )
    return "wait", figures
