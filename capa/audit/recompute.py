"""Recomputing the ledger's tree from the stored events, in one streaming pass (SPEC §5, P3).

The pass hashes every stored event (capa.audit.leaves) and keeps only what a verification or a
proof asks for: the root at given sizes and the roots of given leaf ranges (the subtrees of a
consistency proof). Whole aligned blocks of leaves fold to one subtree root in list
comprehensions, so the memory does not grow with the log and the speed keeps up with raw
hashing. Where the events no longer hash to the ledger's leaves, ``locate`` names the first
difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from capa.audit.errors import TamperDetected
from capa.audit.leaves import StoredEvent, leaf_hashes, leaf_of
from capa.audit.ledger import Ledger
from capa.audit.merkle import EMPTY_ROOT, TreeBuilder, consistency_proof, node_hash
from capa.audit.naming import RecordNames

__all__ = ["Observer", "Recomputed", "check_events", "locate", "proof_ranges", "recompute"]

#: Leaves hashed per block: a power of two, so whole blocks fold into the tree as one subtree.
_BLOCK_HEIGHT = 12
_BLOCK = 1 << _BLOCK_HEIGHT

#: Sees each chunk of stored events and the position before it, during the pass.
Observer = Callable[[Sequence[StoredEvent], int], None]


def _append_subtree(tree: TreeBuilder, root: bytes, height: int) -> TreeBuilder:
    """Append a perfect subtree of 2**height leaves to a tree whose size is a multiple of it."""
    frontier = list(tree.frontier)
    node, n = root, tree.size >> height
    while n & 1:
        node = node_hash(frontier.pop(), node)
        n >>= 1
    frontier.append(node)
    return TreeBuilder.restore(tree.size + (1 << height), frontier)


def _fold(leaves: list[bytes]) -> bytes:
    """Root of a perfect subtree (len(leaves) a power of two), level by level.

    Same hashes as merkle.node_hash, inlined: this runs once per event of the log (P3)."""
    sha256 = hashlib.sha256
    level = leaves
    while len(level) > 1:
        level = [sha256(b"\x01" + a + b).digest() for a, b in zip(level[::2], level[1::2],
                                                                    strict=True)]
    return level[0]


@dataclass
class Recomputed:
    """What one pass over the stored events yields."""

    count: int = 0
    roots: dict[int, bytes] = field(default_factory=dict)
    range_roots: dict[tuple[int, int], bytes] = field(default_factory=dict)
    mismatch: int | None = None


def recompute(ledger: Ledger, sizes: set[int], ranges: Sequence[tuple[int, int]],
               limit: int, observe: Observer | None = None) -> Recomputed:
    """Hash the first ``limit`` stored events; keep the root at every size in ``sizes`` and the
    subtree root of every (start, end) leaf range in ``ranges`` (disjoint ranges). ``observe``,
    if given, sees each chunk of events and the position before it (the signature check)."""
    result = Recomputed()
    if 0 in sizes:
        result.roots[0] = EMPTY_ROOT
    tree = TreeBuilder()
    builders = {r: TreeBuilder() for r in ranges}
    edges = set(sizes) | {b for r in ranges for b in r}
    base = 0
    for chunk in ledger.events(_BLOCK):
        if base >= limit:
            break
        chunk = chunk[: limit - base]
        if observe is not None:
            observe(chunk, base)
        leaves = leaf_hashes(chunk, base + 1)
        end = base + len(leaves)
        fast = len(leaves) == _BLOCK and base % _BLOCK == 0 and not any(
            base < edge < end for edge in edges)
        if fast:
            # One whole aligned block: fold it to one subtree root in list comprehensions and
            # graft it onto the tree and onto the range that contains it, if any.
            block_root = _fold(leaves)
            tree = _append_subtree(tree, block_root, _BLOCK_HEIGHT)
            for (start, stop), builder in builders.items():
                if start <= base and end <= stop:
                    # A tree node that holds a whole block starts on a block boundary, so the
                    # graft is exact; the leaf-by-leaf branch is only a safety net.
                    if builder.size % _BLOCK == 0:
                        builders[(start, stop)] = _append_subtree(builder, block_root,
                                                                  _BLOCK_HEIGHT)
                    else:
                        builder.extend(leaves)
            if end in sizes:
                result.roots[end] = tree.root()
        else:
            for index, leaf in enumerate(leaves, start=base):
                tree.append(leaf)
                for (start, stop), builder in builders.items():
                    if start <= index < stop:
                        builder.append(leaf)
                if index + 1 in sizes:
                    result.roots[index + 1] = tree.root()
        base = end
    result.count = base
    result.range_roots = {r: b.root() for r, b in builders.items() if b.size == r[1] - r[0]}
    return result


def locate(names: RecordNames, ledger: Ledger, limit: int) -> TamperDetected | None:
    """Walk the stored events and the ledger side by side; describe the first difference."""
    rows = (row for chunk in ledger.rows() for row in chunk)
    position = 0
    for chunk in ledger.events(_BLOCK):
        for event in chunk:
            position += 1
            if position > limit:
                return None
            row = next(rows, None)
            if row is None:
                return None
            if row.notification_id != event[0] or row.leaf_hash != leaf_of(position, event):
                expected = names(row.record_id)
                found = names(event[1])
                if (row.record_id, row.version) == (event[1], event[2]):
                    what = "the stored event was changed since it was recorded"
                else:
                    what = (f"the ledger recorded this event here, but the store now holds "
                            f"{found} version {event[2]}; events were deleted, inserted or "
                            "reordered")
                return TamperDetected(what, position=position, record=expected,
                                      version=row.version)
    if position < limit:
        row = ledger.row(position + 1)
        record = names(row.record_id) if row else None
        return TamperDetected(f"the event is missing: the ledger covers {limit} events, the "
                              f"store holds {position}", position=position + 1, record=record,
                              version=row.version if row else None)
    return None


def proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots make up the consistency proof from size1 to size2, in
    proof order (they depend on the sizes only)."""
    ranges: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return EMPTY_ROOT

    consistency_proof(size1, size2, record)
    ranges.reverse()
    return ranges


def check_events(names: RecordNames, ledger: Ledger, tree: TreeBuilder) -> None:
    """Every stored event still hashes to the leaf the ledger recorded for it, else
    TamperDetected naming the first that does not."""
    recomputed = recompute(ledger, {tree.size}, [], tree.size)
    if recomputed.count < tree.size or recomputed.roots.get(tree.size) != tree.root():
        raise locate(names, ledger, tree.size) or TamperDetected(
            "the events no longer hash to the ledger's root")
