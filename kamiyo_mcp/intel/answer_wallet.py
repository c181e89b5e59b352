"""The typed answer of monitor_wallet, and the known-entity label shared with details (pure)."""

from __future__ import annotations

from pydantic import Field

from .answer_base import DATA_AS_OF, Answer


class EntitySource(Answer):
    """Where a known-entity label comes from."""

    title: str = Field(description="What the source is.")
    url: str = Field(description="Where to read it.")
    says: str = Field(description="What it says about the address or its operator, in short.")


class KnownEntity(Answer):
    """A curated label for a well-known address (repository data, each with its sources)."""

    name: str = Field(description="The name the address is known by, e.g. 'c0ffeebabe.eth'.")
    kind: str = Field(description="whitehat_mev (front-runs exploits and returns funds), mev_bot, ...")
    summary: str = Field(description="What the sources say it does, in one sentence.")
    sources: list[EntitySource] = Field(description="The sources of the label.")


class WalletLink(Answer):
    """The address tied to one incident in one role."""

    incident_id: str = Field(description="Incident id (for get_exploit_details or kamiyo://incidents/{id}).")
    protocol: str | None = Field(default=None, description="The incident's protocol.")
    date: str | None = Field(default=None, description="The incident's day, YYYY-MM-DD.")
    role: str = Field(description="attacker (sent the attack transaction), attack_contract or victim_contract.")
    recorded_chains: list[str] = Field(default_factory=list, description="Chains the sources recorded it on.")
    reported_by: list[str] = Field(description="The reports (of each source) that name the address.")
    statement: str = Field(description="The link in words, e.g. 'linked to incident X as attack contract'.")


class Interaction(Answer):
    """A recent transaction of the address with an exploited contract."""

    tx_hash: str = Field(description="Transaction hash.")
    time: str = Field(description="When (ISO 8601, UTC).")
    direction: str = Field(description="out (sent by the address) or in.")
    counterparty: str = Field(description="The exploited contract.")
    counterparty_role: str = Field(description="Its role in the incident: victim_contract or attack_contract.")
    incident_id: str = Field(description="The incident the contract belongs to.")
    protocol: str | None = Field(default=None, description="That incident's protocol.")
    failed: bool = Field(default=False, description="True when the transaction reverted.")


class OnchainCheck(Answer):
    """The on-chain check against an Etherscan-compatible provider."""

    checked: bool = Field(description="Whether the provider answered.")
    provider: str = Field(description="The provider's URL (without credentials).")
    chain: str | None = Field(default=None, description="Chain asked about.")
    chain_id: int | None = Field(default=None, description="Its EIP-155 chain id.")
    transactions_in_lookback: int | None = Field(default=None, description="Transactions inside the look-back.")
    exploited_contract_interactions: list[Interaction] = Field(default_factory=list, description="Those with "
                                                               "exploited contracts, newest first.")
    interactions_total: int | None = Field(default=None, description="How many such transactions there are "
                                           "when not all are listed.")
    error: str | None = Field(default=None, description="Why the check failed, when it did.")


class WalletAnswer(Answer):
    """What is known about an address: incident links, a curated label, and recent exploit interactions."""

    address: str = Field(description="The address, normalized (lower case for EVM).")
    chain: str = Field(description="The chain asked about.")
    lookback_days: int = Field(description="Look-back of the on-chain check, in days.")
    linked: bool = Field(description="Whether any source ties the address to an incident.")
    known_entity: KnownEntity | None = Field(default=None, description="A curated label, when the address is "
                                             "a well-known one (e.g. a whitehat MEV operator).")
    verdict: str = Field(description="What the links mean, in one sentence (a link is not a verdict of malice).")
    incident_links: list[WalletLink] = Field(default_factory=list, description="Incidents the address is tied "
                                             "to, newest first.")
    incident_link_count: int = Field(description="How many incident links there are in all.")
    checked: list[str] = Field(description="What was checked.")
    not_checked: list[str] = Field(default_factory=list, description="What could not be checked, and why.")
    onchain: OnchainCheck | None = Field(default=None, description="The on-chain check, when a provider is set.")
    data_as_of: str | None = DATA_AS_OF
