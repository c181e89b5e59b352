"""What every tool answer shares: a typed model whose wire form leaves out empty fields (pure)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DATA_AS_OF = Field(
    description="When the incident sources were last loaded or confirmed unchanged (ISO 8601, UTC); "
    "absent when no load has completed yet."
)


class Answer(BaseModel):
    """Base of the tools' structured answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The structured content: JSON types, with nulls, empty lists and other defaults left out."""
        return self.model_dump(mode="json", exclude_defaults=True)


class IncidentRow(Answer):
    """One incident (its canonical report, with group-level fields where that report lacks them)."""

    id: str = Field(description="Incident id, e.g. 'defillama:2022-03-23:ronin-bridge'; pass it to "
                    "get_exploit_details or read kamiyo://incidents/{id}.")
    date: str = Field(description="Day of the incident, YYYY-MM-DD (UTC).")
    protocol: str = Field(description="Protocol or project name as the canonical source spells it.")
    chains: list[str] = Field(default_factory=list, description="Chains affected (DeFiLlama's spelling).")
    classification: str | None = Field(default=None, description="DeFiLlama's class, e.g. 'Protocol Logic', "
                                       "'Infrastructure', 'Rugpull'.")
    technique: str | None = Field(default=None, description="How it was done, in the source's words.")
    amount_usd: float | None = Field(default=None, description="Loss in USD; absent when no source states it "
                                     "in dollars.")
    returned_usd: float | None = Field(default=None, description="Funds returned in USD, as the source reports it.")
    source: str = Field(description="Source of the canonical report: defillama, blocksec or defihacklabs.")
    source_url: str | None = Field(default=None, description="The source's link for the incident, when it has one.")
