"""The leaf of one stored event in the ledger's Merkle tree: the one place its bytes are defined.

Every stored event, in global order, is one RFC 6962 leaf over its *ordinal* position (1, 2, 3,
... in notification order), the stored originator id as 32-character hex, the stored version, the
stored topic and the exact stored state bytes::

    leaf      = b"capa-leaf-v1\\n" + "<position>\\n<record id>\\n<version>\\n<topic>\\n" + state
    leaf hash = SHA-256(0x00 || leaf)

Ordinal rather than notification id because PostgreSQL sequences leave gaps on rolled-back
inserts, while a bundle's positions must run 1, 2, 3 for an offline verifier. The state comes
last so that it needs no escaping; every field before it is newline-free, so the encoding is
injective. scripts/verify_bundle.py keeps its own copy (it runs without capa installed); a test
holds the two equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = [
    "LEAF_HASH_PREFIX",
    "LEAF_PREFIX",
    "StoredEvent",
    "event_leaf_hash",
    "leaf_bytes",
    "leaf_hashes",
    "leaf_of",
]

# Versioned so that a future change of the leaf layout can never collide with today's leaves.
LEAF_PREFIX = b"capa-leaf-v1\n"
#: What every leaf hash's input starts with: RFC 6962's 0x00, then LEAF_PREFIX.
LEAF_HASH_PREFIX = b"\x00" + LEAF_PREFIX
_HEADER = "{}\n{}\n{}\n{}\n"

#: (notification id, record id as 32 hex chars, version, topic, stored state bytes)
StoredEvent = tuple[int, str, int, str, bytes]


def leaf_hashes(events: Iterable[StoredEvent], first: int) -> list[bytes]:
    """The leaf hashes of stored events, the first at ordinal position ``first``.

    One comprehension, no argument checks: verification runs this once per event of the log
    (SPEC §7 P3). Ids are hex and topics module paths, so neither can hold the newline that
    would make a leaf ambiguous; a forged one still changes the hash, which is all a
    verification needs."""
    sha256, prefix, header = hashlib.sha256, LEAF_HASH_PREFIX, _HEADER.format
    return [sha256(b"".join((prefix, header(p, e[1], e[2], e[3]).encode(), e[4]))).digest()
            for p, e in enumerate(events, start=first)]


def leaf_of(position: int, event: StoredEvent) -> bytes:
    """The leaf hash of one stored event at an ordinal position."""
    return leaf_hashes((event,), position)[0]


def leaf_bytes(position: int, record_id: str, version: int, event_type: str, state: bytes) -> bytes:
    """capa's canonical leaf encoding of one stored event (the text part in UTF-8), whose
    RFC 6962 leaf hash is ``event_leaf_hash``; a record id or event type holding a newline is
    refused rather than silently made ambiguous."""
    _check(position, record_id, version, event_type)
    return LEAF_PREFIX + _HEADER.format(position, record_id, version, event_type).encode() \
        + _raw(state)


def event_leaf_hash(
    position: int, record_id: str, version: int, event_type: str, state: bytes
) -> bytes:
    """``leaf_hash(leaf_bytes(...))``: the tree leaf of one stored event, its fields checked."""
    _check(position, record_id, version, event_type)
    return leaf_of(position, (0, record_id, version, event_type, _raw(state)))


def _check(position: int, record_id: str, version: int, event_type: str) -> None:
    if type(position) is not int or position < 1:
        raise ValueError(f"position must be an int >= 1, got {position!r}")
    if type(version) is not int or version < 0:
        raise ValueError(f"version must be an int >= 0, got {version!r}")
    if not isinstance(record_id, str) or not isinstance(event_type, str):
        raise TypeError("record id and event type must be str")
    if "\n" in record_id:
        raise ValueError(f"record id must not contain a newline: {record_id!r}")
    if "\n" in event_type:
        raise ValueError(f"event type must not contain a newline: {event_type!r}")


def _raw(state: bytes) -> bytes:
    if type(state) is bytes:
        return state
    if not isinstance(state, bytearray | memoryview):
        raise TypeError(f"state must be bytes, got {type(state).__name__}")
    return bytes(state)
