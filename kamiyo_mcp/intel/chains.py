"""Chain names: DeFiLlama's spelling is canonical; aliases and numeric chain ids map onto it."""

from __future__ import annotations

# BlockSec's numeric chain ids. The negative and odd ids are BlockSec-private; their meaning was
# inferred from the projects that use them (see the shared data README).
BLOCKSEC_CHAIN_IDS: dict[int, str] = {
    1: "Ethereum",
    10: "Optimism",
    56: "BSC",
    130: "Unichain",
    137: "Polygon",
    143: "Monad",
    146: "Sonic",
    250: "Fantom",
    252: "Fraxtal",
    324: "zkSync Era",
    369: "PulseChain",
    480: "World Chain",
    999: "Hyperliquid L1",
    2222: "Kava",
    5000: "Mantle",
    5464: "Saga",
    8453: "Base",
    42161: "Arbitrum",
    42220: "Celo",
    43114: "Avalanche",
    59144: "Linea",
    80094: "Berachain",
    81457: "Blast",
    5: "Sui",
    -3: "Solana",
    -11: "Stellar",
    920637907288165: "Starknet",
}

# Lower-case aliases people type, mapped to DeFiLlama's spelling.
ALIASES: dict[str, str] = {
    "eth": "Ethereum",
    "mainnet": "Ethereum",
    "ethereum mainnet": "Ethereum",
    "bnb": "BSC",
    "bnb chain": "BSC",
    "bnb smart chain": "BSC",
    "binance": "BSC",
    "binance smart chain": "BSC",
    "arbitrum one": "Arbitrum",
    "arb": "Arbitrum",
    "matic": "Polygon",
    "polygon pos": "Polygon",
    "avax": "Avalanche",
    "avalanche c-chain": "Avalanche",
    "op": "Optimism",
    "op mainnet": "Optimism",
    "zksync": "zkSync Era",
    "gnosis": "Gnosis Chain",
    "xdai": "Gnosis Chain",
    "hyperliquid": "Hyperliquid L1",
    "sol": "Solana",
    "btc": "Bitcoin",
    "ftm": "Fantom",
}

# Chains whose accounts are 20-byte hex addresses (0x + 40 hex digits).
EVM_CHAINS: frozenset[str] = frozenset(
    {
        "Ethereum",
        "BSC",
        "Arbitrum",
        "Base",
        "Polygon",
        "Optimism",
        "Avalanche",
        "Fantom",
        "zkSync Era",
        "Blast",
        "Linea",
        "Sonic",
        "Mantle",
        "Berachain",
        "Cronos",
        "Gnosis Chain",
        "Moonriver",
        "Unichain",
        "Celo",
        "Scroll",
        "Metis",
        "Polygon zkEVM",
        "Harmony",
        "Fuse",
        "Heco",
        "PulseChain",
        "Monad",
        "Hyperliquid L1",
        "Kava",
        "Fraxtal",
        "World Chain",
        "Saga",
        "Rootstock",
        "RSK",
        "Moonbeam",
        "Aurora",
        "Boba",
        "Kaia",
        "Klaytn",
        "Mode",
        "Taiko",
        "Sei",
    }
)
BASE58_CHAINS: frozenset[str] = frozenset({"Solana"})


def chain_key(name: str) -> str:
    """The case-insensitive lookup key of a chain name."""
    return " ".join(name.split()).casefold()


def canonical_chain(name: str, known: dict[str, str] | None = None) -> str | None:
    """DeFiLlama's spelling for ``name`` (any case, or an alias), or None when unknown.

    ``known`` maps ``chain_key`` → spelling for chains seen in the data, so a chain that
    appears in the store is accepted even when this module has never heard of it.
    """
    key = chain_key(name)
    if known and key in known:
        return known[key]
    if key in ALIASES:
        return ALIASES[key]
    for spelled in EVM_CHAINS | BASE58_CHAINS:
        if chain_key(spelled) == key:
            return spelled
    return None


# EIP-155 chain ids of EVM chains, sent as ``chainid`` to multi-chain Etherscan-compatible APIs.
EVM_CHAIN_IDS: dict[str, int] = {
    name: ident for ident, name in BLOCKSEC_CHAIN_IDS.items() if ident > 0 and name in EVM_CHAINS
}
