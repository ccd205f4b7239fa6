"""RFC 6962 Merkle tree hashing, incremental roots and inclusion/consistency proofs for the ledger.

Conventions used throughout this module:

- Leaves are addressed by a 0-based ``index``; the store's global ``position`` is 1-based, so the
  event at position ``p`` is leaf ``p - 1`` and a tree of ``size`` n covers positions 1..n.
- Every hash is 32 raw bytes (SHA-256). Hex or base64 belongs to the callers that print hashes.
- The root of the empty tree is ``SHA-256(b"")`` (RFC 6962 §2.1), exposed as ``EMPTY_ROOT``.

Generation and verification are deliberately separate: proofs are generated from any source of
subtree roots (``MerkleTree`` for an in-memory list of leaf hashes, or a storage-backed callable),
and verified by standalone functions that need nothing but the proof, the sizes and the roots.
The algorithms are those of RFC 6962 §2.1.1-§2.1.2 (generation) and RFC 9162 §2.1.3.2 and
§2.1.4.2 (verification). What a leaf of the ledger holds is capa.audit.leaves'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "ProofError",
    "SubtreeRoot",
    "TreeBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeRoot = Callable[[int, int], bytes]
"""``subtree_root(start, end)`` returns the RFC 6962 hash MTH(D[start:end]) of leaves
``start <= index < end``. Proof generation only ever asks for ranges of the tree being proved."""

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A Merkle proof, root or leaf hash does not verify (or is not even well formed)."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || leaf)``."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes")


class TreeBuilder:
    """Incremental Merkle tree: append leaf hashes one at a time, read the root at any point.

    It keeps only the *frontier* (a compact range from 0): the roots of the perfect subtrees that
    make up the current tree, largest (leftmost) first, one per set bit of ``size``, so memory is
    O(log n) and each append costs O(1) amortised hashes. ``frontier`` and ``restore`` let a ledger
    persist that state (at most 64 hashes) and carry on later without rehashing old leaves.
    """

    __slots__ = ("_size", "_frontier")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []

    @classmethod
    def restore(cls, size: int, frontier: Sequence[bytes]) -> TreeBuilder:
        """Rebuild a builder from a ``size`` and the ``frontier`` it had at that size."""
        if type(size) is not int or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        if len(frontier) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}"
            )
        for h in frontier:
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise ValueError(f"frontier hashes must be {HASH_SIZE} bytes")
        builder = cls()
        builder._size = size
        builder._frontier = list(frontier)
        return builder

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees covering leaves ``0..size-1``, largest first."""
        return tuple(self._frontier)

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (already ``SHA-256(0x00 || leaf)``)."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
        frontier = self._frontier
        h = leaf_hash
        n = self._size
        # Each trailing 1 bit of the old size is a perfect subtree of equal height to the left of
        # the new leaf: merging them is exactly the carry of a binary increment.
        while n & 1:
            h = _sha256(b"\x01" + frontier.pop() + h).digest()
            n >>= 1
        frontier.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order (the fast path for verifying a whole log)."""
        frontier = self._frontier
        pop, push, sha256 = frontier.pop, frontier.append, _sha256
        size = self._size
        try:
            for h in leaf_hashes:
                if type(h) is not bytes or len(h) != HASH_SIZE:
                    raise ValueError(f"leaf hash must be {HASH_SIZE} bytes")
                n = size
                while n & 1:
                    h = sha256(b"\x01" + pop() + h).digest()
                    n >>= 1
                push(h)
                size += 1
        finally:
            # Leaves appended before a bad one stay appended, exactly as with append().
            self._size = size

    def root(self) -> bytes:
        """Return the RFC 6962 root of the tree as it stands (``EMPTY_ROOT`` when empty)."""
        if not self._frontier:
            return EMPTY_ROOT
        # MTH splits at the largest power of two, so the tree is the frontier folded from the
        # right: the smallest subtrees combine first.
        frontier = self._frontier
        h = frontier[-1]
        for left in reversed(frontier[:-1]):
            h = _sha256(b"\x01" + left + h).digest()
        return h


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """Return the RFC 6962 root over the given leaf hashes, streaming in O(log n) memory."""
    builder = TreeBuilder()
    builder.extend(leaf_hashes)
    return builder.root()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """Return the audit path PATH(index, D[size]) of RFC 6962 §2.1.1, leaf to root order.

    ``subtree_root(start, end)`` must return MTH(D[start:end]); it is called once per proof node.
    """
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise ValueError(f"leaf index {index!r} is not in a tree of size {size!r}")
    path: list[bytes] = []
    start, end, m = 0, size, index
    # Walk down from the root, recording the sibling subtree at each level; the RFC builds the
    # path bottom-up, so the collected siblings are reversed at the end.
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            path.append(subtree_root(start + k, end))
            end = start + k
        else:
            path.append(subtree_root(start, start + k))
            start += k
            m -= k
    path.reverse()
    return path


def consistency_proof(size1: int, size2: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """Return PROOF(size1, D[size2]) of RFC 6962 §2.1.2 that the first ``size1`` leaves of the
    tree of ``size2`` leaves are unchanged. Empty when ``size1`` is 0 or equal to ``size2``.

    ``subtree_root(start, end)`` must return MTH(D[start:end]); it is called once per proof node.
    """
    if type(size1) is not int or type(size2) is not int or not 0 <= size1 <= size2:
        raise ValueError(f"need 0 <= size1 <= size2, got {size1!r} and {size2!r}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []
    start, end, m = 0, size2, size1
    complete = True  # RFC 6962's ``b``: is the current subtree entirely inside the old tree?
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_root(start + k, end))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k))
            start += k
            m -= k
            complete = False
    if not complete:
        proof.append(subtree_root(start, end))
    proof.reverse()
    return proof


class MerkleTree:
    """Proof generator over an in-memory sequence of leaf hashes (positions 1..n = indexes 0..n-1).

    Perfect subtrees of at least ``cache_leaves`` leaves are memoised, so the many proofs of one
    export or ``prove`` run share the expensive upper levels instead of rehashing the whole log
    for each proof; memory stays about ``2 * n / cache_leaves`` hashes.
    """

    def __init__(self, leaf_hashes: Sequence[bytes], *, cache_leaves: int = 256) -> None:
        if cache_leaves < 1:
            raise ValueError("cache_leaves must be >= 1")
        self._leaves = leaf_hashes
        self._cache_leaves = cache_leaves
        self._cache: dict[tuple[int, int], bytes] = {}

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._leaves)

    def subtree_root(self, start: int, end: int) -> bytes:
        """Return MTH(D[start:end]), the RFC 6962 hash of leaves ``start <= index < end``."""
        if not 0 <= start < end <= len(self._leaves):
            raise ValueError(f"no leaves {start}..{end} in a tree of size {len(self._leaves)}")
        return self._mth(start, end)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return self._leaves[start]
        cacheable = n >= self._cache_leaves and n & (n - 1) == 0
        if cacheable and (start, end) in self._cache:
            return self._cache[(start, end)]
        k = _split(n)
        h = node_hash(self._mth(start, start + k), self._mth(start + k, end))
        if cacheable:
            self._cache[(start, end)] = h
        return h

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (all of them by default)."""
        size = len(self._leaves) if size is None else size
        if not 0 <= size <= len(self._leaves):
            raise ValueError(f"size {size} is beyond the {len(self._leaves)} leaves")
        return EMPTY_ROOT if size == 0 else self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        size = len(self._leaves) if size is None else size
        if size > len(self._leaves):
            raise ValueError(f"size {size} is beyond the {len(self._leaves)} leaves")
        return inclusion_proof(index, size, self.subtree_root)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Return the consistency proof from the tree of ``size1`` to that of ``size2`` leaves."""
        size2 = len(self._leaves) if size2 is None else size2
        if size2 > len(self._leaves):
            raise ValueError(f"size {size2} is beyond the {len(self._leaves)} leaves")
        return consistency_proof(size1, size2, self.subtree_root)


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2), or raise ProofError.

    Only a root obtained from a trusted source (a verified checkpoint) makes this meaningful;
    ``verify_inclusion`` does the comparison.
    """
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise ProofError(f"leaf index {index!r} is not in a tree of size {size!r}")
    _check_hash(leaf_hash, "leaf hash")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A right-edge node without a sibling is promoted unchanged: skip those levels.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Returns None on success and raises ProofError otherwise.
    """
    _check_hash(root, "root hash")
    if root_from_inclusion_proof(index, size, leaf_hash, proof) != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of the tree of ``size2``
    leaves with ``root2`` (RFC 9162 §2.1.4.2). Returns None, or raises ProofError.

    Trivial cases are strict: an empty old tree must have ``EMPTY_ROOT``, equal sizes need equal
    roots, and both need an empty proof.
    """
    if type(size1) is not int or type(size2) is not int or not 0 <= size1 <= size2:
        raise ProofError(f"need 0 <= size1 <= size2, got {size1!r} and {size2!r}")
    _check_hash(root1, "first root hash")
    _check_hash(root2, "second root hash")
    for p in proof:
        _check_hash(p, "proof hash")
    if size1 == 0 or size1 == size2:
        if proof:
            raise ProofError("consistency proof must be empty for these sizes")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("an empty tree must have the empty root")
        if size1 == size2 and root1 != root2:
            raise ProofError("trees of equal size have different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")

    path = list(proof)
    # When the old tree is a perfect subtree, its root is a node of the new tree and the RFC
    # leaves it out of the proof.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")
