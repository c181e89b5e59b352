"""Wallet-address validation per chain, including the EIP-55 checksum (pure)."""

from __future__ import annotations

import re

from Crypto.Hash import keccak

from .errors import IntelInputError

_EVM = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def eip55_checksum(address: str) -> str:
    """The EIP-55 mixed-case spelling of a 0x-prefixed 40-hex-digit address."""
    lower = address[2:].lower()
    digest = keccak.new(digest_bits=256, data=lower.encode("ascii")).hexdigest()
    return "0x" + "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(lower, digest[:40], strict=True))


def validate_evm_address(address: str, chain: str) -> str:
    """The lower-case form of a valid EVM address.

    Raises:
        IntelInputError: wrong shape, or mixed case that fails the EIP-55 checksum.
    """
    if not _EVM.fullmatch(address):
        detail = _evm_shape_problem(address)
        raise IntelInputError(f"address: {address!r} is not a valid {chain} address ({detail})")
    body = address[2:]
    if body != body.lower() and body != body.upper() and eip55_checksum(address) != address:
        raise IntelInputError(
            f"address: {address!r} fails the EIP-55 checksum (mixed case must match; "
            f"expected {eip55_checksum(address)}, or write it all lower case)"
        )
    return address.lower()


def _evm_shape_problem(address: str) -> str:
    if not address.startswith(("0x", "0X")):
        return "expected 0x followed by 40 hex digits"
    body = address[2:]
    if len(body) != 40:
        return f"expected 40 hex digits after 0x, got {len(body)}"
    bad = sorted({c for c in body if c not in "0123456789abcdefABCDEF"})
    if address.startswith("0X"):
        return "the prefix must be a lower-case 0x"
    return f"non-hex characters: {''.join(bad)}"


def validate_base58_address(address: str, chain: str) -> str:
    """A valid base58 address (32–44 characters), unchanged (base58 is case-sensitive).

    Raises:
        IntelInputError: wrong length or a character outside the base58 alphabet.
    """
    bad = sorted({c for c in address if c not in _BASE58_ALPHABET})
    if bad:
        raise IntelInputError(
            f"address: {address!r} is not a valid {chain} address "
            f"(characters not in base58: {' '.join(repr(c) for c in bad)})"
        )
    if not 32 <= len(address) <= 44:
        raise IntelInputError(
            f"address: {address!r} is not a valid {chain} address (base58, 32–44 characters; got {len(address)})"
        )
    return address
