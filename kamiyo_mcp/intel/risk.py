"""The protocol risk score (pure).

Formula (each component 0–100, then a weighted sum rounded to an integer 0–100)::

    frequency = 100 · (1 − e^(−n_window))                 n_window: incidents in the window
    severity  = 100 · clamp((log10(total_loss_usd) − 4) / 5)   $10k → 0, $1B and more → 100
    recency   = 100 if the last incident is inside the window,
                else 100 · 0.5^((days_since_last − window_days) / 365)   (halves each year after)
    repeat    = min(100, 40 · (n_all − 1))                 n_all: incidents ever, 0 for one or none
    score     = 0.30·frequency + 0.30·severity + 0.25·recency + 0.15·repeat

Levels: low < 30 ≤ medium < 60 ≤ high < 85 ≤ critical. Severity uses gross losses: the sources'
"returned" figures are unreliable (Bybit's equals its loss, Euler's exceeds it), and the size of
what could be taken says more about the exposure than what was later negotiated back. A protocol
with no recorded incident scores 0: absence of evidence, which the answer states.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WEIGHTS: dict[str, float] = {"frequency": 0.30, "severity": 0.30, "recency": 0.25, "repeat": 0.15}
LEVELS: tuple[tuple[int, str], ...] = ((85, "critical"), (60, "high"), (30, "medium"), (0, "low"))


@dataclass(frozen=True, slots=True)
class ScoredIncident:
    """What the formula needs of one incident (one canonical report per incident group)."""

    date: date
    amount_usd: float | None


@dataclass(frozen=True, slots=True)
class RiskScore:
    score: int
    level: str
    components: dict[str, float]
    exploit_count: int
    window_count: int
    total_loss_usd: float
    last_exploit_date: date | None


def level_for(score: float) -> str:
    """The level name of a 0–100 score."""
    return next(name for floor, name in LEVELS if score >= floor)


def frequency_component(window_count: int) -> float:
    return 100.0 * (1.0 - math.exp(-window_count))


def repeat_component(exploit_count: int) -> float:
    return min(100.0, 40.0 * max(0, exploit_count - 1))


def combined_score(frequency: float, severity: float, recency: float, repeat: float) -> int:
    """The 0–100 score of components already rounded to one decimal."""
    raw = (
        WEIGHTS["frequency"] * frequency
        + WEIGHTS["severity"] * severity
        + WEIGHTS["recency"] * recency
        + WEIGHTS["repeat"] * repeat
    )
    return max(0, min(100, round(raw)))


def severity_component(total_loss_usd: float) -> float:
    if total_loss_usd <= 0:
        return 0.0
    return 100.0 * min(1.0, max(0.0, (math.log10(total_loss_usd) - 4.0) / 5.0))


def recency_component(days_since_last: int | None, window_days: int) -> float:
    if days_since_last is None:
        return 0.0
    if days_since_last <= window_days:
        return 100.0
    return float(100.0 * 0.5 ** ((days_since_last - window_days) / 365.0))


def score_incidents(incidents: Sequence[ScoredIncident], *, today: date, window_days: int) -> RiskScore:
    """The risk score of a protocol from its incidents up to ``today``."""
    past = [i for i in incidents if i.date <= today]
    window = [i for i in past if (today - i.date).days <= window_days]
    total = sum(i.amount_usd or 0.0 for i in past)
    last = max((i.date for i in past), default=None)
    components = {
        "frequency": round(frequency_component(len(window)), 1),
        "severity": round(severity_component(total), 1),
        "recency": round(recency_component((today - last).days if last else None, window_days), 1),
        "repeat": round(repeat_component(len(past)), 1),
    }
    score = combined_score(**components)
    return RiskScore(score, level_for(score), components, len(past), len(window), total, last)


def percentile(value: float, population: Sequence[float]) -> float:
    """The share (0–100) of ``population`` at or below ``value``, one decimal."""
    if not population:
        return 0.0
    at_or_below = sum(1 for v in population if v <= value)
    return round(100.0 * at_or_below / len(population), 1)


_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("private key", "compromised", "phishing", "multisig", "social engineering"),
        "Harden key management: hardware-backed multisig with independent signers, transaction "
        "simulation before signing, and timelocks on privileged actions.",
    ),
    (
        ("oracle", "price manipulation", "price dependency", "flashloan", "flash loan"),
        "Review price sources: use manipulation-resistant oracles (TWAP or several feeds) and bound "
        "what one transaction can move.",
    ),
    (("reentrancy",), "Audit external calls for reentrancy: checks-effects-interactions and reentrancy guards."),
    (
        ("access control", "acces control", "unprotected", "arbitrary call", "arbitrary external"),
        "Audit access control on every state-changing and call-forwarding function.",
    ),
    (
        ("logic", "rounding", "precision", "calculation"),
        "Commission an audit of the accounting logic with invariant and fuzz testing.",
    ),
    (
        ("bridge", "signature", "verification", "trusted root"),
        "Verify message and signature validation paths of the bridge or verifier contracts.",
    ),
)


def recommendations(score: RiskScore, techniques: Sequence[str]) -> list[str]:
    """Plain advice drawn from the score's components and the incidents' techniques."""
    text = " ".join(t.casefold() for t in techniques if t)
    advice = [tip for words, tip in _ADVICE if any(w in text for w in words)]
    if score.components.get("recency", 0) >= 100:
        advice.insert(
            0,
            "An incident falls inside the window: check whether the root cause is fixed "
            "and funds are recovered before depositing or integrating.",
        )
    if score.components.get("repeat", 0) >= 40:
        advice.append("Repeated incidents: treat fixes with caution and prefer limited exposure.")
    if not advice:
        advice.append("No incident on record: risk is not zero; rely on audits, bug bounties and monitoring.")
    return advice
