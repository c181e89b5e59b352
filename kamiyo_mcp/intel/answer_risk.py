"""The typed answer of assess_defi_protocol_risk (pure)."""

from __future__ import annotations

from pydantic import Field

from .answer_base import DATA_AS_OF, Answer


class RecentExploit(Answer):
    """One of the protocol's incidents."""

    id: str = Field(description="Incident id (for get_exploit_details or kamiyo://incidents/{id}).")
    date: str = Field(description="Day of the incident, YYYY-MM-DD.")
    protocol: str = Field(description="Name as the canonical source spells it.")
    amount_usd: float | None = Field(default=None, description="Loss in USD, when known.")


class RiskFactors(Answer):
    """The four components of the score, each 0–100."""

    frequency: float = Field(description="100·(1 − e^(−incidents in the window)).")
    severity: float = Field(description="100·clamp((log10(total USD lost) − 4)/5): $10k → 0, $1B → 100.")
    recency: float = Field(description="100 when the last incident is inside the window, halving every year after.")
    repeat: float = Field(description="min(100, 40·(incidents − 1)).")


class PeerComparison(Answer):
    """How the score compares with every other protocol that has an incident on record."""

    percentile: float | None = Field(default=None, description="Share (0–100) of protocols scoring at or below "
                                     "this one; absent when this protocol has no incident.")
    protocols_compared: int = Field(description="How many protocols were compared.")
    median_peer_score: int | None = Field(default=None, description="The median of their scores.")
    basis: str = Field(description="What the peers are.")


class RiskAnswer(Answer):
    """A protocol's 0–100 exploit-risk score and level, with detail by tier."""

    protocol: str = Field(description="The protocol name as asked.")
    chain: str | None = Field(default=None, description="The chain incidents were restricted to, if any.")
    risk_score: int = Field(description="0–100; 0 means no recorded incident, not that the protocol is safe.")
    risk_level: str = Field(description="low (< 30), medium (< 60), high (< 85) or critical.")
    time_window_days: int = Field(description="The look-back window for frequency and recency, in days.")
    as_of: str = Field(description="The day the score was computed for (YYYY-MM-DD, UTC).")
    matched_protocols: list[str] = Field(default_factory=list, description="The names (as the sources spell "
                                         "them) whose incidents were counted; every incident of these is counted.")
    note: str | None = Field(default=None, description="Said when no incident was found.")
    suggestions: list[str] = Field(default_factory=list, description="Names that look like the one asked, when "
                                   "nothing matched.")
    exploit_count: int | None = Field(default=None, description="Incidents ever (team and enterprise).")
    exploits_in_window: int | None = Field(default=None, description="Incidents inside the window (team and "
                                           "enterprise).")
    total_loss_usd: float | None = Field(default=None, description="USD lost over all incidents (team and "
                                         "enterprise).")
    last_exploit_date: str | None = Field(default=None, description="Day of the latest incident (team and "
                                          "enterprise).")
    recent_exploits: list[RecentExploit] = Field(default_factory=list, description="Up to five latest incidents "
                                                 "(team and enterprise).")
    risk_factors: RiskFactors | None = Field(default=None, description="The score's components (enterprise).")
    recommendations: list[str] = Field(default_factory=list, description="Advice drawn from the incidents' "
                                       "techniques and the score (enterprise).")
    peer_comparison: PeerComparison | None = Field(default=None, description="Comparison with other protocols "
                                                   "(enterprise).")
    formula: str | None = Field(default=None, description="How the score is computed (enterprise).")
    detail: str = Field(description="The detail this plan gets: basic (personal), summary (team) or full "
                        "(enterprise).")
    data_as_of: str | None = DATA_AS_OF
