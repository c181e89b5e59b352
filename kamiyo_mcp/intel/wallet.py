"""monitor_wallet: screening an address against known incident addresses (and, with a provider,
its recent transactions with exploited contracts).

A match reads "linked to incident X as <role>", never "malicious": whitehat rescuers and MEV bots
appear as attackers in the sources, and victim contracts are victims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .addresses import validate_base58_address, validate_evm_address
from .answer_wallet import Interaction, KnownEntity, OnchainCheck, WalletAnswer, WalletLink
from .chain_provider import ChainProvider
from .chains import BASE58_CHAINS, EVM_CHAIN_IDS, EVM_CHAINS, canonical_chain
from .dates import as_utc, utc_now
from .errors import ChainProviderError, IntelInputError
from .known_entities import known_entity
from .shaping import positive_int, require_data
from .store import IntelStore
from .table import plural

MAX_LOOKBACK_DAYS = 3650
EXPLOITED_ROLES = ("victim_contract", "attack_contract")
ROLE_WORDS = {
    "attacker": "attacker (sender of the attack transaction)",
    "attack_contract": "attack contract",
    "victim_contract": "victim contract",
}
MAX_LINKS_SHOWN = 50
MAX_INTERACTIONS_SHOWN = 100


def validate_address(address: Any, chain: Any) -> tuple[str, str]:
    """``(normalized address, canonical chain)``.

    Raises:
        IntelInputError: unsupported chain, or an address that is not valid on it.
    """
    if not isinstance(chain, str) or not chain.strip():
        raise IntelInputError("chain: expected a chain name such as 'ethereum', 'bsc' or 'solana'")
    spelled = canonical_chain(chain)
    if spelled is None or (spelled not in EVM_CHAINS and spelled not in BASE58_CHAINS):
        raise IntelInputError(
            f"chain: {chain!r} is not supported for wallet monitoring; supported: EVM chains "
            "(ethereum, bsc, arbitrum, base, polygon, optimism, avalanche, ...) and solana"
        )
    if not isinstance(address, str) or not address.strip():
        raise IntelInputError("address: expected a wallet address")
    address = address.strip()
    if spelled in BASE58_CHAINS:
        return validate_base58_address(address, spelled), spelled
    return validate_evm_address(address, spelled), spelled


def _same_family(link_chain: str, chain: str) -> bool:
    # An EVM account is the same key on every EVM chain, so a link recorded on BSC is relevant to
    # the same address on Ethereum; other chains only match themselves.
    if chain in EVM_CHAINS:
        return link_chain in EVM_CHAINS or not link_chain
    return link_chain.casefold() == chain.casefold()


async def screen_wallet(
    store: IntelStore,
    provider: ChainProvider | None,
    *,
    address: str,
    chain: str,
    lookback_days: int,
    now: datetime | None = None,
) -> WalletAnswer:
    """What is known about ``address``: incident links, a curated label and (with a provider) exploit interactions.

    Raises:
        IntelInputError: bad address, chain or lookback.
        NoIncidentDataError: nothing is loaded yet.
    """
    normalized, spelled = validate_address(address, chain)
    lookback = positive_int(lookback_days, "lookback_days", maximum=MAX_LOOKBACK_DAYS)
    await require_data(store)
    stamp = await store.stamp()
    moment = as_utc(now or utc_now())

    hits = [h for h in await store.address_hits([normalized]) if _same_family(h.link.chain, spelled)]
    links: dict[tuple[str, str], dict[str, Any]] = {}
    for h in hits:
        incident = h.group_id or h.link.incident_id
        entry = links.setdefault(
            (incident, h.link.role),
            {
                "incident_id": incident,
                "protocol": h.protocol,
                "date": h.incident_date,
                "role": h.link.role,
                "recorded_chains": [],
                "reported_by": [],
                "statement": f"linked to incident {incident} as {ROLE_WORDS[h.link.role]}",
            },
        )
        if h.link.chain and h.link.chain not in entry["recorded_chains"]:
            entry["recorded_chains"].append(h.link.chain)
        if h.link.incident_id not in entry["reported_by"]:
            entry["reported_by"].append(h.link.incident_id)
    entity = known_entity(normalized, spelled)
    known = await store.address_count()
    checked = [f"known incident addresses ({known} addresses from BlockSec and DeFiHackLabs: attackers, attack "
               "contracts, victim contracts)", "the curated list of well-known whitehat and MEV addresses"]
    not_checked: list[str] = []
    onchain: OnchainCheck | None = None
    if provider is None:
        not_checked.append("on-chain transactions: no chain provider is configured (set KAMIYO_CHAIN_API_URL and "
                           "KAMIYO_CHAIN_API_KEY to an Etherscan-compatible API)")
    elif spelled not in EVM_CHAINS:
        not_checked.append(f"on-chain transactions: the configured provider covers EVM chains, not {spelled}")
    else:
        onchain = await _interactions(store, provider, normalized, spelled, moment, lookback)
        if onchain.error:
            not_checked.append(f"on-chain transactions: {onchain.error}")
        else:
            checked.append(f"transactions of the last {lookback} days against exploited contracts")
    all_links = [WalletLink(**link) for link in links.values()]
    return WalletAnswer(
        address=normalized,
        chain=spelled,
        lookback_days=lookback,
        linked=bool(links),
        known_entity=entity,
        verdict=verdict([link.role for link in all_links], entity),
        incident_links=all_links[:MAX_LINKS_SHOWN],
        incident_link_count=len(links),
        checked=checked,
        not_checked=not_checked,
        onchain=onchain,
        data_as_of=stamp.data_as_of,
    )


def verdict(roles: list[str], entity: KnownEntity | None) -> str:
    """What the links mean, in one sentence: a link is evidence, not a verdict."""
    count = {role: roles.count(role) for role in set(roles)}
    if entity is not None and entity.kind == "whitehat_mev":
        listed = (f" The incident sources list it as the attacker of {plural(count['attacker'], 'incident')} "
                  "because it front-ran those exploits." if count.get("attacker") else "")
        return (f"Known whitehat MEV operator ({entity.name}): its sources say it front-runs exploits and returns "
                f"what it takes.{listed} Not an exploiter by these records.")
    if count.get("attack_contract"):
        return (f"A contract used to carry out {plural(count['attack_contract'], 'exploit')}: do not interact with "
                "it or approve it.")
    if count.get("attacker"):
        return (f"Named as the sender of the attack transaction of {plural(count['attacker'], 'incident')}: avoid "
                "it unless you know it to be a rescuer (whitehat and MEV bots also appear as attackers).")
    if count.get("victim_contract"):
        return (f"An exploited (victim) contract in {plural(count['victim_contract'], 'incident')}: check that it "
                "was fixed, migrated or deprecated before depositing or approving it.")
    return ("No source ties this address to an incident. That is absence of evidence, not a clean bill: new "
            "exploiters have no history.")


async def _interactions(
    store: IntelStore, provider: ChainProvider, address: str, chain: str, moment: datetime, lookback: int
) -> OnchainCheck:
    try:
        txs = await provider.transactions(address, chain_id=EVM_CHAIN_IDS.get(chain))
    except ChainProviderError as exc:
        return OnchainCheck(checked=False, provider=provider.display_url, error=str(exc))
    start = int((moment - timedelta(days=lookback)).timestamp())
    recent = [t for t in txs if t.timestamp >= start]
    counterparties = sorted({t.to_address for t in recent} | {t.from_address for t in recent} - {address, ""})
    flagged = {h.link.address: h for h in await store.address_hits(counterparties, EXPLOITED_ROLES)}
    interactions = [
        Interaction(
            tx_hash=t.hash,
            time=datetime.fromtimestamp(t.timestamp, UTC).isoformat(),
            direction="out" if t.from_address == address else "in",
            counterparty=cp,
            counterparty_role=flagged[cp].link.role,
            incident_id=flagged[cp].group_id or flagged[cp].link.incident_id,
            protocol=flagged[cp].protocol,
            failed=t.is_error,
        )
        for t in recent
        for cp in [t.to_address if t.from_address == address else t.from_address]
        if cp in flagged
    ]
    return OnchainCheck(
        checked=True,
        provider=provider.display_url,
        chain=chain,
        chain_id=EVM_CHAIN_IDS.get(chain),
        transactions_in_lookback=len(recent),
        exploited_contract_interactions=interactions[:MAX_INTERACTIONS_SHOWN],
        interactions_total=len(interactions) if len(interactions) > MAX_INTERACTIONS_SHOWN else None,
    )
