"""Merkle hashing and proofs, checked against published RFC 6962 test vectors and by properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capa.audit.leaves import event_leaf_hash, leaf_bytes
from capa.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# Published test vectors, copied from github.com/transparency-dev/merkle (Apache-2.0), the Go
# library behind Trillian and Certificate Transparency logs; the same eight leaves and roots are in
# google/certificate-transparency's python/ct/crypto/merkle_test.py:
#   testonly/constants.go   @ 582a6ad190b6848f1d26f8bf08ddef29955d9db1  LeafInputs, NodeHashes,
#                                                                       RootHashes, CompactTrees
#   proof/verify_test.go    @ 02194e9afb6c1d95b5381350007963aa70fff472  inclusionProofs,
#                                                                       consistencyProofs, roots
#   proof/proof_test.go     @ 02a3e2029520f515596d5238c54fb0ac9e19bff4  TestInclusion and
#                                                                       TestConsistency node ids
#   rfc6962/rfc6962_test.go @ 78493b07ef9b552e3379abf9e23d4da26fbe797c  TestRFC6962Hasher

LEAF_INPUTS = [
    bytes.fromhex(""),
    bytes.fromhex("00"),
    bytes.fromhex("10"),
    bytes.fromhex("2021"),
    bytes.fromhex("3031"),
    bytes.fromhex("40414243"),
    bytes.fromhex("5051525354555657"),
    bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
]

# NodeHashes()[level][index]: every perfect subtree of the 8-leaf tree.
NODE_HASHES_HEX = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# RootHashes(): index = tree size.
ROOT_HEX = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# verify_test.go inclusionProofs: (1-based leaf, tree size, proof). {0, 0, nil} is left out, as
# the Go test itself skips it ("i = 0 is an invalid path").
INCLUSION_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# verify_test.go consistencyProofs: (size1, size2, proof).
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def h(hex_digest: str) -> bytes:
    return bytes.fromhex(hex_digest)


def N(level: int, index: int) -> bytes:
    """A node of the published 8-leaf tree, named like compact.NewNodeID(level, index)."""
    return h(NODE_HASHES_HEX[level][index])


LEAF_HASHES = [leaf_hash(x) for x in LEAF_INPUTS]
ROOTS = [h(x) for x in ROOT_HEX]
TREE = MerkleTree(LEAF_HASHES)


def reference_mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) written exactly as the recursive definition of RFC 6962 §2.1."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(reference_mth(leaves[:k]), reference_mth(leaves[k:]))


# --- hashing -------------------------------------------------------------------------------------


def test_rfc6962_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_hashes_match_published_level_zero() -> None:
    assert [N(0, i) for i in range(8)] == LEAF_HASHES


def test_leaf_bytes_layout() -> None:
    got = leaf_bytes(42, "NC-0007", 3, "capa.domain.Nonconformity.Contained", b'{"a":1}\n\x00')
    assert got == (
        b"capa-leaf-v1\n42\nNC-0007\n3\ncapa.domain.Nonconformity.Contained\n" + b'{"a":1}\n\x00'
    )
    assert event_leaf_hash(42, "NC-0007", 3, "E", b"s") == leaf_hash(
        b"capa-leaf-v1\n42\nNC-0007\n3\nE\ns"
    )


def test_leaf_bytes_encodes_text_as_utf8() -> None:
    assert leaf_bytes(1, "NC-é", 1, "Ré", b"") == "capa-leaf-v1\n1\nNC-é\n1\nRé\n".encode()


@pytest.mark.parametrize(
    "args",
    [
        (0, "r", 1, "E", b""),
        (-1, "r", 1, "E", b""),
        (True, "r", 1, "E", b""),
        (1, "r", -1, "E", b""),
        (1, "r", 1.0, "E", b""),
        (1, "a\nb", 1, "E", b""),
        (1, "r", 1, "E\n", b""),
    ],
)
def test_leaf_bytes_refuses_ambiguous_or_invalid_fields(args: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        leaf_bytes(*args)  # type: ignore[arg-type]


def test_leaf_bytes_refuses_text_state() -> None:
    with pytest.raises(TypeError):
        leaf_bytes(1, "r", 1, "E", "state")  # type: ignore[arg-type]


# --- roots and the incremental builder -----------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_published_root_for_every_size(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size]
    assert TREE.root(size) == ROOTS[size]
    assert reference_mth(LEAF_HASHES[:size]) == ROOTS[size]


def test_builder_root_and_frontier_after_each_append() -> None:
    # CompactTrees() of constants.go: the perfect subtrees the builder must hold at each size.
    expected_frontiers: list[list[bytes]] = [
        [],
        [N(0, 0)],
        [N(1, 0)],
        [N(1, 0), N(0, 2)],
        [N(2, 0)],
        [N(2, 0), N(0, 4)],
        [N(2, 0), N(1, 2)],
        [N(2, 0), N(1, 2), N(0, 6)],
        [N(3, 0)],
    ]
    builder = TreeBuilder()
    assert builder.root() == EMPTY_ROOT
    assert builder.frontier == ()
    for size, leaf in enumerate(LEAF_HASHES, start=1):
        builder.append(leaf)
        assert builder.size == size
        assert builder.root() == ROOTS[size]
        assert list(builder.frontier) == expected_frontiers[size]


def test_builder_restored_from_frontier_carries_on() -> None:
    first = TreeBuilder()
    first.extend(LEAF_HASHES[:5])
    resumed = TreeBuilder.restore(first.size, first.frontier)
    assert resumed.root() == ROOTS[5]
    resumed.extend(LEAF_HASHES[5:])
    assert resumed.root() == ROOTS[8]


@pytest.mark.parametrize(
    ("size", "frontier"),
    [
        (3, [N(1, 0)]),
        (0, [N(0, 0)]),
        (-1, []),
        (1, [b"short"]),
    ],
)
def test_builder_refuses_an_inconsistent_frontier(size: int, frontier: list[bytes]) -> None:
    with pytest.raises(ValueError):
        TreeBuilder.restore(size, frontier)


def test_builder_refuses_a_leaf_that_is_not_a_hash() -> None:
    with pytest.raises(ValueError):
        TreeBuilder().append(b"not a hash")
    builder = TreeBuilder()
    with pytest.raises(ValueError):
        builder.extend([*LEAF_HASHES[:3], b"not a hash", LEAF_HASHES[3]])
    assert builder.size == 3
    assert builder.root() == ROOTS[3]


def test_event_leaf_hash_is_the_hash_of_leaf_bytes() -> None:
    for state in (b"", b"{}", bytearray(b"\x00\xff"), memoryview(b"abc")):
        expected = leaf_hash(leaf_bytes(7, "CA-0001", 2, "Approved", bytes(state)))
        assert event_leaf_hash(7, "CA-0001", 2, "Approved", state) == expected  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        event_leaf_hash(7, "CA\n0001", 2, "Approved", b"")


# --- published proofs ---------------------------------------------------------------------------


@pytest.mark.parametrize(("leaf", "size", "proof_hex"), INCLUSION_VECTORS)
def test_published_inclusion_proofs(leaf: int, size: int, proof_hex: list[str]) -> None:
    proof = [h(x) for x in proof_hex]
    index = leaf - 1
    assert TREE.inclusion_proof(index, size) == proof
    assert root_from_inclusion_proof(index, size, LEAF_HASHES[index], proof) == ROOTS[size]
    verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "proof_hex"), CONSISTENCY_VECTORS)
def test_published_consistency_proofs(size1: int, size2: int, proof_hex: list[str]) -> None:
    proof = [h(x) for x in proof_hex]
    assert TREE.consistency_proof(size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def _ij() -> bytes:
    # Node "l" of the 7-leaf tree in proof_test.go: hash(i, j), rehashed from its two parts.
    return node_hash(N(1, 2), N(0, 6))


# proof_test.go TestInclusion / TestConsistency name proof nodes by (level, index); mapped to the
# published NodeHashes they give the expected proofs of every case within the 8-leaf tree.
PROOF_NODE_INCLUSION = [
    (1, 0, lambda: []),
    (2, 0, lambda: [N(0, 1)]),
    (2, 1, lambda: [N(0, 0)]),
    (3, 1, lambda: [N(0, 0), N(0, 2)]),
    (7, 0, lambda: [N(0, 1), N(1, 1), _ij()]),
    (7, 1, lambda: [N(0, 0), N(1, 1), _ij()]),
    (7, 2, lambda: [N(0, 3), N(1, 0), _ij()]),
    (7, 3, lambda: [N(0, 2), N(1, 0), _ij()]),
    (7, 4, lambda: [N(0, 5), N(0, 6), N(2, 0)]),
    (7, 5, lambda: [N(0, 4), N(0, 6), N(2, 0)]),
    (7, 6, lambda: [N(1, 2), N(2, 0)]),
    (4, 2, lambda: [N(0, 3), N(1, 0)]),
    (5, 3, lambda: [N(0, 2), N(1, 0), N(0, 4)]),
    (6, 3, lambda: [N(0, 2), N(1, 0), N(1, 2)]),
    (6, 4, lambda: [N(0, 5), N(2, 0)]),
]

PROOF_NODE_CONSISTENCY = [
    (1, 2, lambda: [N(0, 1)]),
    (1, 4, lambda: [N(0, 1), N(1, 1)]),
    (1, 6, lambda: [N(0, 1), N(1, 1), N(1, 2)]),
    (2, 3, lambda: [N(0, 2)]),
    (2, 8, lambda: [N(1, 1), N(2, 1)]),
    (3, 7, lambda: [N(0, 2), N(0, 3), N(1, 0), _ij()]),
    (4, 7, lambda: [_ij()]),
    (5, 7, lambda: [N(0, 4), N(0, 5), N(0, 6), N(2, 0)]),
    (6, 7, lambda: [N(1, 2), N(0, 6), N(2, 0)]),
    (7, 8, lambda: [N(0, 6), N(0, 7), N(1, 2), N(2, 0)]),
    (2, 4, lambda: [N(1, 1)]),
    (3, 5, lambda: [N(0, 2), N(0, 3), N(1, 0), N(0, 4)]),
    (3, 6, lambda: [N(0, 2), N(0, 3), N(1, 0), N(1, 2)]),
    (4, 6, lambda: [N(1, 2)]),
    (1, 7, lambda: [N(0, 1), N(1, 1), _ij()]),
    *[(s, s, lambda: []) for s in (1, 2, 3, 4, 5, 7, 8)],
]


@pytest.mark.parametrize(("size", "index", "expected"), PROOF_NODE_INCLUSION)
def test_inclusion_proof_nodes(size: int, index: int, expected: object) -> None:
    proof = TREE.inclusion_proof(index, size)
    assert proof == expected()  # type: ignore[operator]
    verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "expected"), PROOF_NODE_CONSISTENCY)
def test_consistency_proof_nodes(size1: int, size2: int, expected: object) -> None:
    proof = TREE.consistency_proof(size1, size2)
    assert proof == expected()  # type: ignore[operator]
    verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (2, 1), (8, 7), (-1, 3)])
def test_inclusion_proof_refuses_a_leaf_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        inclusion_proof(index, size, TREE.subtree_root)


@pytest.mark.parametrize(("size1", "size2"), [(5, 0), (9, 8), (-1, 3)])
def test_consistency_proof_refuses_shrinking_trees(size1: int, size2: int) -> None:
    with pytest.raises(ValueError):
        consistency_proof(size1, size2, TREE.subtree_root)


def test_proofs_beyond_the_known_leaves_are_refused() -> None:
    with pytest.raises(ValueError):
        TREE.inclusion_proof(0, 9)
    with pytest.raises(ValueError):
        TREE.consistency_proof(1, 9)
    with pytest.raises(ValueError):
        TREE.root(9)


# --- corrupted proofs (the probes of verify_test.go) ---------------------------------------------


def inclusion_probes(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> list[tuple[str, int, int, bytes, list[bytes], bytes]]:
    probes = [
        ("index - 1", index - 1, size, leaf, proof, root),
        ("index + 1", index + 1, size, leaf, proof, root),
        ("index ^ 2", index ^ 2, size, leaf, proof, root),
        ("size * 2", index, size * 2, leaf, proof, root),
        ("size // 2", index, size // 2, leaf, proof, root),
        ("wrong leaf", index, size, leaf_hash(b"WrongLeaf"), proof, root),
        ("empty root", index, size, leaf, proof, EMPTY_ROOT),
        ("random root", index, size, leaf, proof, SOME_HASH),
        ("trailing garbage", index, size, leaf, [*proof, b""], root),
        ("trailing root", index, size, leaf, [*proof, root], root),
        ("preceding garbage", index, size, leaf, [b"", *proof], root),
        ("preceding root", index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"modified proof[{i}]", index, size, leaf, wrong, root))
    if proof:
        probes.append(("removed component", index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append(("inserted", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
    return probes


def consistency_probes(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("size1 - 1", size1 - 1, size2, proof, root1, root2),
        ("size1 + 1", size1 + 1, size2, proof, root1, root2),
        ("size1 ^ 2", size1 ^ 2, size2, proof, root1, root2),
        ("size2 * 2", size1, size2 * 2, proof, root1, root2),
        ("size2 // 2", size1, size2 // 2, proof, root1, root2),
        ("wrong root1", size1, size2, proof, SOME_HASH, root2),
        ("wrong root2", size1, size2, proof, root1, SOME_HASH),
        ("swapped roots", size1, size2, proof, root2, root1),
        ("empty proof", size1, size2, [], root1, root2),
        ("trailing garbage", size1, size2, [*proof, b""], root1, root2),
        ("trailing root1", size1, size2, [*proof, root1], root1, root2),
        ("trailing root2", size1, size2, [*proof, root2], root1, root2),
        ("preceding garbage", size1, size2, [b"", *proof], root1, root2),
        ("preceding root1", size1, size2, [root1, *proof], root1, root2),
        ("preceding root2", size1, size2, [root2, *proof], root1, root2),
        ("preceding proof[0]", size1, size2, [proof[0], *proof], root1, root2),
        ("truncated proof", size1, size2, proof[:-1], root1, root2),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((f"modified proof[{i}]", size1, size2, wrong, root1, root2))
    return probes


@pytest.mark.parametrize(("leaf", "size", "proof_hex"), INCLUSION_VECTORS)
def test_corrupted_published_inclusion_proofs_fail(
    leaf: int, size: int, proof_hex: list[str]
) -> None:
    index = leaf - 1
    proof = [h(x) for x in proof_hex]
    for desc, i, n, lh, p, r in inclusion_probes(
        index, size, LEAF_HASHES[index], proof, ROOTS[size]
    ):
        with pytest.raises(ProofError):
            verify_inclusion(i, n, lh, p, r)
            pytest.fail(f"accepted: {desc}")


@pytest.mark.parametrize(("size1", "size2", "proof_hex"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_corrupted_published_consistency_proofs_fail(
    size1: int, size2: int, proof_hex: list[str]
) -> None:
    proof = [h(x) for x in proof_hex]
    probes = consistency_probes(size1, size2, proof, ROOTS[size1], ROOTS[size2])
    for desc, s1, s2, p, r1, r2 in probes:
        with pytest.raises(ProofError):
            verify_consistency(s1, s2, p, r1, r2)
            pytest.fail(f"accepted: {desc}")


def test_single_leaf_inclusion() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(0, 1, leaf, [], leaf)
    for lh, root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(0, 1, lh, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1)])
def test_inclusion_in_impossible_trees_fails(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        verify_inclusion(index, size, SOME_HASH, [], EMPTY_ROOT)


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOTS[1], [], True),
        (1, 1, ROOTS[1], ROOTS[1], [], True),
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, ROOTS[1], ROOTS[2], [], False),
        # Stricter than the Go verifier on purpose: an empty tree has exactly one root.
        (0, 1, SOME_HASH, ROOTS[1], [], False),
        (1, 0, ROOTS[1], EMPTY_ROOT, [], False),
        (2, 1, ROOTS[2], ROOTS[1], [], False),
        (1, 2, ROOTS[1], ROOTS[2], [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, ROOTS[1], [EMPTY_ROOT], False),
        (1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT], False),
    ],
)
def test_trivial_consistency_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(size1, size2, proof, root1, root2)
    else:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, root2)


# --- properties ----------------------------------------------------------------------------------


def leaves_for(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_builder_and_tree_agree_with_the_rfc_definition(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    builder = TreeBuilder()
    tree = MerkleTree(leaves, cache_leaves=2)
    for size, lh in enumerate(leaves, start=1):
        builder.append(lh)
        expected = reference_mth(leaves[:size])
        assert builder.root() == expected
        assert tree.root(size) == expected
        assert TreeBuilder.restore(size, builder.frontier).root() == expected
        assert len(builder.frontier) == bin(size).count("1")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_inclusion_proof_verifies_and_tampering_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=300), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    leaves = leaves_for(size)
    tree = MerkleTree(leaves, cache_leaves=4)
    root = tree.root(size)
    proof = tree.inclusion_proof(index, size)
    assert len(proof) <= size.bit_length()
    verify_inclusion(index, size, leaves[index], proof, root)

    for desc, i, n, lh, p, r in inclusion_probes(index, size, leaves[index], proof, root):
        with pytest.raises(ProofError):
            verify_inclusion(i, n, lh, p, r)
            pytest.fail(f"accepted: {desc}")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_consistency_proof_verifies_and_tampering_fails(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(min_value=1, max_value=300), label="size2")
    size1 = data.draw(st.integers(min_value=0, max_value=size2), label="size1")
    leaves = leaves_for(size2)
    tree = MerkleTree(leaves, cache_leaves=4)
    root1, root2 = tree.root(size1), tree.root(size2)
    proof = tree.consistency_proof(size1, size2)
    verify_consistency(size1, size2, proof, root1, root2)
    if not proof:
        return
    for _desc, s1, s2, p, r1, r2 in consistency_probes(size1, size2, proof, root1, root2):
        with pytest.raises(ProofError):
            verify_consistency(s1, s2, p, r1, r2)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_a_rewritten_history_is_never_consistent(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(min_value=2, max_value=120), label="size2")
    size1 = data.draw(st.integers(min_value=1, max_value=size2 - 1), label="size1")
    changed = data.draw(st.integers(min_value=0, max_value=size1 - 1), label="changed")
    honest = leaves_for(size2)
    forged = list(honest)
    forged[changed] = leaf_hash(b"rewritten")
    old_root = MerkleTree(honest).root(size1)
    forged_tree = MerkleTree(forged)
    with pytest.raises(ProofError):
        verify_consistency(
            size1,
            size2,
            forged_tree.consistency_proof(size1, size2),
            old_root,
            forged_tree.root(size2),
        )


def test_storage_backed_subtree_roots_give_the_same_proofs() -> None:
    leaves = leaves_for(37)
    calls: list[tuple[int, int]] = []

    def subtree_root(start: int, end: int) -> bytes:
        calls.append((start, end))
        return reference_mth(leaves[start:end])

    tree = MerkleTree(leaves)
    assert inclusion_proof(20, 37, subtree_root) == tree.inclusion_proof(20, 37)
    assert consistency_proof(13, 37, subtree_root) == tree.consistency_proof(13, 37)
    assert all(0 <= s < e <= 37 for s, e in calls)


def test_large_tree_proofs_use_the_cache() -> None:
    leaves = leaves_for(5000)
    tree = MerkleTree(leaves)
    builder = TreeBuilder()
    builder.extend(leaves)
    assert tree.root() == builder.root()
    for index in (0, 1234, 4095, 4096, 4999):
        verify_inclusion(index, 5000, leaves[index], tree.inclusion_proof(index), builder.root())
    verify_consistency(4096, 5000, tree.consistency_proof(4096), tree.root(4096), builder.root())
