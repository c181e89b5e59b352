"""The typed answer of get_exploit_details (and of an incident resource) (pure)."""

from __future__ import annotations

from pydantic import Field

from .answer_base import DATA_AS_OF, Answer, IncidentRow
from .answer_wallet import KnownEntity


class IncidentDetail(IncidentRow):
    """The canonical report of the incident, with what its source adds."""

    target_type: str | None = Field(default=None, description="What was hit (DeFiLlama): DeFi Protocol, CEX, "
                                    "Wallet, ...")
    bridge_hack: bool | None = Field(default=None, description="Whether it was a bridge (DeFiLlama).")
    language: str | None = Field(default=None, description="Language of the exploited code (DeFiLlama).")
    loss_text: str | None = Field(default=None, description="The loss as the source wrote it, when not in USD.")
    poc_url: str | None = Field(default=None, description="A proof-of-concept reproduction (DeFiHackLabs).")
    references: list[str] = Field(default_factory=list, description="Write-ups and analyses the source links.")


class ReportDifference(Answer):
    """Another source's report of the same incident: only the fields where it says something else."""

    id: str = Field(description="That report's id.")
    source: str = Field(description="defillama, blocksec or defihacklabs.")
    date: str | None = Field(default=None, description="Its day, when it differs.")
    protocol: str | None = Field(default=None, description="Its name for the protocol, when it differs.")
    chains: list[str] = Field(default_factory=list, description="Its chains, when they differ.")
    classification: str | None = Field(default=None, description="Its class, when it differs.")
    technique: str | None = Field(default=None, description="Its technique, when it differs.")
    amount_usd: float | None = Field(default=None, description="Its loss in USD, when it differs.")
    returned_usd: float | None = Field(default=None, description="Its returned amount, when it differs.")
    loss_text: str | None = Field(default=None, description="Its loss as written, when not in USD.")
    source_url: str | None = Field(default=None, description="Its link, when it differs.")
    poc_url: str | None = Field(default=None, description="Its proof of concept, when the canonical has none.")


class AddressEntry(Answer):
    """An address the sources tie to the incident, with every role they give it."""

    address: str = Field(description="The address (lower case for EVM).")
    chain: str | None = Field(default=None, description="The chain it was recorded on.")
    roles: list[str] = Field(description="attacker (sent the attack transaction), attack_contract, victim_contract.")
    reported_by: list[str] = Field(description="The sources that name it.")
    labels: list[str] = Field(default_factory=list, description="The labels the sources wrote, e.g. 'Attacker EOA'.")
    known_entity: KnownEntity | None = Field(default=None, description="A curated label, when the address is a "
                                             "well-known one (e.g. a whitehat that front-ran the exploit).")


class TransactionEntry(Answer):
    """An attack transaction."""

    hash: str = Field(description="Transaction hash.")
    chain: str | None = Field(default=None, description="Its chain, when a source says.")
    reported_by: list[str] = Field(description="The sources that list it.")


class DetailsAnswer(Answer):
    """One incident: the canonical report, what other sources say differently, addresses and transactions."""

    incident: IncidentDetail = Field(description="The canonical report (DeFiLlama when it has one).")
    requested_id: str | None = Field(default=None, description="The id asked for, when it is another report of "
                                     "this incident.")
    amount_caveats: list[str] = Field(default_factory=list, description="Where the amounts need care: sources "
                                      "that disagree, or more returned than lost.")
    other_reports: list[ReportDifference] = Field(default_factory=list, description="The other sources' reports, "
                                                  "each with only what it says differently.")
    addresses: list[AddressEntry] = Field(default_factory=list, description="Addresses tied to the incident.")
    addresses_total: int = Field(description="How many addresses there are in all (more than listed when cut "
                                 "to the answer budget).")
    transactions: list[TransactionEntry] = Field(default_factory=list, description="Attack transactions.")
    transactions_total: int = Field(description="How many attack transactions there are in all.")
    counting: str = Field(description="How this incident counts in totals.")
    data_as_of: str | None = DATA_AS_OF
