"""C2SP interoperability of checkpoints: any valid tlog-checkpoint is read, vkeys round-trip,
and witness cosignatures follow tlog-cosignature/v1, checked here by hand-written verification
that does not use capa's code."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from capa.audit.errors import CheckpointSignatureError, MalformedCheckpointError
from capa.audit.keys import raw_public_key
from capa.audit.notes import (
    cosign_note,
    cosignature_time,
    create_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from capa.audit.proofs import parse_consistency
from capa.audit.vkeys import COSIGNATURE_TYPE, parse_vkey, vkey
from capa.domain.errors import InvalidInput

ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()

# The verifier key and the note it verifies, as published in the C2SP signed-note
# specification (c2sp.org/signed-note, section "Verifier keys", "Example").
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKu"
    "wHjG1Yu72IneyaQM=\n"
)
# golang.org/x/mod/sumdb/note, note_test.go (TestNewVerifier, TestOpen): a verifier key.
GO_PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
# The checkpoint example of c2sp.org/tlog-cosignature: a log signature and a witness
# cosignature (the keys are not published, so it can only be parsed).
SPEC_COSIGNED = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2"
    "q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def test_the_signed_note_spec_vkey_verifies_its_example_note() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert open_note(SPEC_NOTE, verifier.public_key, verifier.name) == (
        "This is an example message.\n")
    assert verifier.text() == SPEC_VKEY
    with pytest.raises(CheckpointSignatureError):
        open_note(SPEC_NOTE.replace("example message", "example massage"), verifier.public_key)


def test_the_go_vkey_round_trips() -> None:
    verifier = parse_vkey(GO_PETER_KEY)
    assert (verifier.name, verifier.key_id.hex()) == ("PeterNeumann", "c74f20a3")
    assert vkey("PeterNeumann", verifier.public_key) == GO_PETER_KEY


def test_a_vkey_of_capa_is_what_an_independent_reader_expects() -> None:
    key = Ed25519PrivateKey.generate()
    text = vkey("capa/0123456789abcdef", key)
    name, kid, material = text.split("+", 2)
    blob = base64.b64decode(material)
    assert blob[0] == 1 and blob[1:] == raw_public_key(key)
    assert bytes.fromhex(kid) == hashlib.sha256(name.encode() + b"\n\x01" + blob[1:]).digest()[:4]
    assert parse_vkey(text).public_key.public_bytes_raw() == raw_public_key(key)


@pytest.mark.parametrize("text", [
    "",
    "name-only",
    "a+b",
    "bad name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong key id
    "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # upper-case hex
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # bad base64
    "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # type 0x02
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv",  # short key
])
def test_malformed_vkeys_are_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        parse_vkey(text)


def test_the_cosignature_spec_example_parses_with_its_witness_line() -> None:
    signed = parse_checkpoint(SPEC_COSIGNED)
    assert (signed.checkpoint.origin, signed.checkpoint.size) == (
        "example.com/behind-the-sofa", 20852163)
    assert signed.checkpoint.time is None and signed.checkpoint.extensions == ()
    assert [s.key_name for s in signed.signatures] == [
        "example.com/behind-the-sofa", "witness.example.com/w1"]
    assert len(signed.signatures[1].signature) == 8 + 64  # timestamp and Ed25519 signature


def test_a_checkpoint_with_extension_lines_and_foreign_signatures_is_read() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = f"log.example/a b+c\n5\n{ROOT_B64}\nexample.com/ext 42\ntime 2024-05-01T12:00:00Z\n"
    note = sign_note(body, "log.example/a", key)
    # Foreign lines: another key under another name, an unknown key under the same name (its
    # key id differs), and a line that is not even Ed25519: all ignored, as signed-note says.
    note += sign_note(body, "log.example/b", other).split("\n\n")[-1]
    note += "— log.example/a " + base64.b64encode(b"\x00\x01\x02\x03" + bytes(70)).decode() + "\n"
    note += "— witness.example/w " + base64.b64encode(bytes(76)).decode() + "\n"
    checkpoint = verify_checkpoint(note, key.public_key())
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (
        "log.example/a b+c", 5, ROOT)
    # "time" is capa's only when it is the first extension line; otherwise it stays opaque.
    assert checkpoint.time is None
    assert checkpoint.extensions == ("example.com/ext 42", "time 2024-05-01T12:00:00Z")
    assert checkpoint.body() == body
    assert verify_checkpoint(note, other.public_key()).size == 5


def test_capa_time_line_and_further_extension_lines_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    body = f"o\n1\n{ROOT_B64}\ntime 2024-05-01T12:00:00Z\nextra one\nextra two\n"
    checkpoint = verify_checkpoint(sign_note(body, "o", key), key.public_key())
    assert checkpoint.time == "2024-05-01T12:00:00Z"
    assert checkpoint.extensions == ("extra one", "extra two")
    assert checkpoint.body() == body


def test_a_failing_line_that_claims_the_trusted_key_spoils_the_note() -> None:
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(create_checkpoint("o", 3, ROOT), key)
    good_line = note.split("\n\n")[1]
    name, blob = good_line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(note + f"{name} {base64.b64encode(bytes(raw)).decode()}\n",
                          key.public_key())


def independent_cosignature_check(note: str, name: str, public: Ed25519PublicKey) -> int:
    """tlog-cosignature/v1 as its specification words it, without capa's parser."""
    text, signatures = note[: note.rindex("\n\n") + 1], note[note.rindex("\n\n") + 2:]
    kid = hashlib.sha256(name.encode() + b"\n\x04" + public.public_bytes_raw()).digest()[:4]
    for line in signatures.splitlines():
        line_name, blob_text = line.removeprefix("— ").split(" ")
        blob = base64.b64decode(blob_text)
        if line_name == name and blob[:4] == kid:
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            public.verify(blob[12:], f"cosignature/v1\ntime {timestamp}\n{text}".encode())
            return int(timestamp)
    raise AssertionError("no cosignature")


def test_a_cosignature_follows_tlog_cosignature_v1() -> None:
    log, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(create_checkpoint("capa/abc", 7, ROOT), log)
    cosigned = cosign_note(note, "qa.example/w1", witness, 1_700_000_000)
    assert cosigned.startswith(note)
    assert independent_cosignature_check(cosigned, "qa.example/w1", witness.public_key()) == (
        1_700_000_000)
    verifier = parse_vkey(vkey("qa.example/w1", witness, COSIGNATURE_TYPE))
    assert cosignature_time(cosigned, verifier) == 1_700_000_000
    assert cosignature_time(note, verifier) is None
    # The store's signature still verifies: a cosignature is one more line, ignored by others.
    assert verify_checkpoint(cosigned, log.public_key()).size == 7
    # Cosigning again replaces the witness's own line instead of adding a second one.
    again = cosign_note(cosigned, "qa.example/w1", witness, 1_700_000_100)
    assert again.count("— qa.example/w1 ") == 1
    assert cosignature_time(again, verifier) == 1_700_000_100


def test_a_cosignature_moved_to_another_checkpoint_does_not_verify() -> None:
    log, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    verifier = parse_vkey(vkey("w", witness, COSIGNATURE_TYPE))
    first = cosign_note(sign_checkpoint(create_checkpoint("o", 7, ROOT), log), "w", witness, 5)
    other = sign_checkpoint(create_checkpoint("o", 8, hashlib.sha256(b"x").digest()), log)
    moved = other + first.split("\n\n")[1].splitlines(keepends=True)[-1]
    with pytest.raises(CheckpointSignatureError):
        cosignature_time(moved, verifier)
    with pytest.raises(InvalidSignature):
        independent_cosignature_check(moved, "w", witness.public_key())
    # A store signature line is not a cosignature: a type 0x01 vkey is refused for this.
    with pytest.raises(MalformedCheckpointError):
        cosignature_time(first, parse_vkey(vkey("w", witness)))


LINES = st.lists(st.one_of(
    st.sampled_from(["o", "5", ROOT_B64, "time 2024-05-01T12:00:00Z", "", "old 5", "— o AAAA",
                     "— o " + base64.b64encode(bytes(68)).decode(), "+", "a+b+c"]),
    st.text(max_size=12)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(lines=LINES)
def test_any_text_is_parsed_or_refused_as_malformed_never_otherwise(lines: list[str]) -> None:
    text = "\n".join(lines)
    for candidate in (text, text + "\n"):
        with contextlib.suppress(MalformedCheckpointError):
            parse_checkpoint(candidate)
        with contextlib.suppress(MalformedCheckpointError):
            parse_vkey(candidate)
        with contextlib.suppress(InvalidInput):
            parse_consistency(candidate)
