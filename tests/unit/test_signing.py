"""Store keys and signed checkpoints: key files, the signed-note wire format, strict parsing."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from capa.audit.errors import CheckpointSignatureError, KeyFileError, MalformedCheckpointError
from capa.audit.keys import (
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    public_key_from_pem,
    public_key_pem,
    raw_public_key,
)
from capa.audit.notes import (
    Checkpoint,
    create_checkpoint,
    format_time,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from capa.audit.vkeys import key_id

# Published signed-note vectors of golang.org/x/mod/sumdb/note, the reference implementation of
# C2SP signed-note: github.com/golang/mod, sumdb/note/note_test.go
# @ 02c991387e35f9e4c0a9b7ce137717055f8d716d (TestSign, TestOpen). Keys are in Go's text form
# "<name>+<hex key id>+<base64(0x01 || key)>"; the private one holds the 32-byte Ed25519 seed.
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_KEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

ROOT = hashlib.sha256(b"some root").digest()
AT = datetime(2024, 5, 1, 12, 30, 5, tzinfo=UTC)


def go_key_material(text_key: str) -> tuple[str, bytes, bytes]:
    """Split a Go note key into (name, key id, key bytes); base64 may itself contain '+'."""
    fields = text_key.removeprefix("PRIVATE+KEY+").split("+", 2)
    blob = base64.b64decode(fields[2])
    assert blob[0] == 1  # Ed25519
    return fields[0], bytes.fromhex(fields[1]), blob[1:]


def go_signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(go_key_material(GO_SIGNER_KEY)[2])


def go_verifier(text_key: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(go_key_material(text_key)[2])


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def note(key: Ed25519PrivateKey) -> str:
    return sign_checkpoint(create_checkpoint("capa.example/store-1", 8, ROOT, AT), key)


# --- published signed-note vectors ---------------------------------------------------------------


def test_go_vector_key_id_and_public_key() -> None:
    signer = go_signer()
    name, kid, raw = go_key_material(GO_PETER_KEY)
    assert raw_public_key(signer) == raw
    assert key_id(name, signer) == kid == bytes.fromhex("c74f20a3")
    enoch_name, enoch_id, _ = go_key_material(GO_ENOCH_KEY)
    assert key_id(enoch_name, go_verifier(GO_ENOCH_KEY)) == enoch_id


def test_go_vector_signature_is_reproduced_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", go_signer()) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_vector_opens_and_ignores_other_keys() -> None:
    both = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    assert open_note(both, go_verifier(GO_PETER_KEY)) == GO_TEXT
    assert open_note(both, go_verifier(GO_ENOCH_KEY)) == GO_TEXT
    assert open_note(both, go_verifier(GO_PETER_KEY), key_name="PeterNeumann") == GO_TEXT
    text, signatures = parse_note(both)
    assert text == GO_TEXT
    assert [(s.key_name, s.key_id.hex()) for s in signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]


def test_go_vector_rejections() -> None:
    peter = go_verifier(GO_PETER_KEY)
    with pytest.raises(CheckpointSignatureError):
        open_note(GO_TEXT + "\n" + GO_ENOCH_SIG, peter)
    with pytest.raises(CheckpointSignatureError):
        open_note(GO_TEXT.replace("cryptography", "cryptographY") + "\n" + GO_PETER_SIG, peter)
    with pytest.raises(CheckpointSignatureError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:], peter)
    # A known key's failing signature spoils the note even next to a good one (signed-note).
    bad_copy = GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]
    with pytest.raises(CheckpointSignatureError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG + bad_copy, peter)


@pytest.mark.parametrize(
    "message",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + GO_PETER_SIG,
        GO_TEXT + "\n" + "— Bad Name " + GO_PETER_SIG.split(" ")[2].rstrip("\n"),
        GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + GO_PETER_SIG * 101,
    ],
)
def test_go_vector_malformed_notes(message: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        open_note(message, go_verifier(GO_PETER_KEY))


def test_invalid_utf8_note_is_malformed() -> None:
    with pytest.raises(MalformedCheckpointError):
        parse_note(b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode())


# --- key files -----------------------------------------------------------------------------------


def test_generated_key_file_is_private_pkcs8_pem(tmp_path: Path) -> None:
    path = tmp_path / "store.key"
    key = generate_private_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = load_private_key(path)
    assert raw_public_key(loaded) == raw_public_key(key)


def test_generated_key_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        generate_private_key(tmp_path / "store.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "store.key").stat().st_mode) == 0o600


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "store.key"
    generate_private_key(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        generate_private_key(path)
    assert path.read_bytes() == before


def test_generate_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        generate_private_key(tmp_path / "missing" / "store.key")


def test_load_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "store.key"
    generate_private_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="0600"):
        load_private_key(path)
    assert isinstance(load_private_key(path, require_private_mode=False), Ed25519PrivateKey)


@pytest.mark.parametrize(
    "content",
    [
        b"not a key",
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
    ],
    ids=["garbage", "ecdsa", "encrypted"],
)
def test_load_refuses_what_is_not_an_unencrypted_ed25519_key(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "store.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_private_key(path)


def test_load_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "absent.key")
    with pytest.raises(KeyFileError):
        load_public_key(tmp_path / "absent.pem")


def test_public_key_pem_round_trip_and_fingerprint(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pem = public_key_pem(key)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    assert public_key_pem(key.public_key()) == pem
    (tmp_path / "public_key.pem").write_bytes(pem)
    loaded = load_public_key(tmp_path / "public_key.pem")
    assert raw_public_key(loaded) == raw_public_key(key)
    assert public_key_from_pem(pem).public_bytes_raw() == raw_public_key(key)
    assert (
        fingerprint(key) == fingerprint(loaded) == hashlib.sha256(raw_public_key(key)).hexdigest()
    )
    assert len(raw_public_key(key)) == 32


def test_public_key_loader_refuses_private_keys_and_other_algorithms(
    key: Ed25519PrivateKey,
) -> None:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for pem in (private_pem, ec_pem, b"junk"):
        with pytest.raises(KeyFileError):
            public_key_from_pem(pem)


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoint_note_layout(key: Ed25519PrivateKey, note: str) -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    body = f"capa.example/store-1\n8\n{root_b64}\ntime 2024-05-01T12:30:05Z\n"
    assert note.startswith(body + "\n— capa.example/store-1 ")
    assert note.endswith("\n")
    blob = base64.b64decode(note.splitlines()[-1].split(" ")[2])
    assert blob[:4] == key_id("capa.example/store-1", key)
    key.public_key().verify(blob[4:], body.encode())


def test_checkpoint_round_trip(key: Ed25519PrivateKey, note: str) -> None:
    signed = parse_checkpoint(note)
    expected = Checkpoint("capa.example/store-1", 8, ROOT, "2024-05-01T12:30:05Z")
    assert signed.checkpoint == expected
    assert signed.text == expected.body()
    assert [s.key_name for s in signed.signatures] == ["capa.example/store-1"]
    assert verify_checkpoint(note, key.public_key()) == expected
    assert verify_checkpoint(note.encode(), key.public_key()) == expected
    assert expected.issued_at == AT


def test_checkpoint_time_is_utc_with_z() -> None:
    paris = timezone(timedelta(hours=2))
    moment = datetime(2024, 5, 1, 14, 30, 5, 999, tzinfo=paris)
    assert create_checkpoint("o", 0, ROOT, moment).time == "2024-05-01T12:30:05Z"
    assert format_time(AT) == "2024-05-01T12:30:05Z"
    with pytest.raises(ValueError):
        format_time(datetime(2024, 5, 1, 12, 0))
    assert create_checkpoint("o", 0, ROOT).time.endswith("Z")


def test_fractional_seconds_are_accepted_when_parsing() -> None:
    assert Checkpoint("o", 1, ROOT, "2024-05-01T12:30:05.123456Z").issued_at.microsecond == 123456


def test_checkpoint_signed_under_another_key_name(key: Ed25519PrivateKey) -> None:
    checkpoint = create_checkpoint("capa.example/store-1", 3, ROOT, AT)
    note = sign_checkpoint(checkpoint, key, key_name="capa-store-key")
    assert verify_checkpoint(note, key.public_key()) == checkpoint
    assert verify_checkpoint(note, key.public_key(), key_name="capa-store-key") == checkpoint
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(note, key.public_key(), key_name="capa.example/store-1")


def test_wrong_key_is_refused(note: str) -> None:
    with pytest.raises(CheckpointSignatureError, match="fingerprint"):
        verify_checkpoint(note, Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n8\n", "\n9\n"),
        ("store-1\n", "store-2\n"),
        ("12:30:05Z", "12:30:06Z"),
    ],
)
def test_any_change_to_the_signed_text_is_detected(
    key: Ed25519PrivateKey, note: str, old: str, new: str
) -> None:
    forged = note.replace(old, new, 1)
    assert forged != note
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(forged, key.public_key())


def test_a_changed_root_is_detected(key: Ed25519PrivateKey, note: str) -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    other = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(note.replace(root_b64, other), key.public_key())


def test_a_flipped_signature_bit_is_detected(key: Ed25519PrivateKey, note: str) -> None:
    head, blob_b64 = note.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(blob_b64))
    blob[-1] ^= 1
    forged = f"{head} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(forged, key.public_key())


def test_witness_signatures_are_ignored(key: Ed25519PrivateKey, note: str) -> None:
    witness = Ed25519PrivateKey.generate()
    text = parse_checkpoint(note).text
    witness_line = sign_note(text, "witness.example", witness).split("\n\n", 1)[1]
    cosigned = note + witness_line
    assert verify_checkpoint(cosigned, key.public_key()).size == 8
    assert verify_checkpoint(cosigned, witness.public_key()).size == 8


def _malformed_variants() -> list[tuple[str, str]]:
    body = f"o\n5\n{base64.b64encode(ROOT).decode()}\ntime 2024-05-01T12:30:05Z\n"
    sig = "— o " + base64.b64encode(bytes(68)).decode() + "\n"
    root = base64.b64encode(ROOT).decode()
    return [
        ("no signature", body),
        ("no blank line", body + sig),
        ("empty signature block", body + "\n"),
        ("missing final newline", body + "\n" + sig[:-1]),
        ("crlf", (body + "\n" + sig).replace("\n", "\r\n")),
        ("tab", body.replace("o\n", "o\t\n", 1) + "\n" + sig),
        ("leading zero", body.replace("\n5\n", "\n05\n") + "\n" + sig),
        ("negative size", body.replace("\n5\n", "\n-5\n") + "\n" + sig),
        ("plus size", body.replace("\n5\n", "\n+5\n") + "\n" + sig),
        ("unicode digit", body.replace("\n5\n", "\n\u0665\n") + "\n" + sig),
        ("hex root", body.replace(root, ROOT.hex()) + "\n" + sig),
        ("short root", body.replace(root, base64.b64encode(ROOT[:31]).decode()) + "\n" + sig),
        ("unpadded root", body.replace(root, root.rstrip("=")) + "\n" + sig),
        ("empty origin", body[1:] + "\n" + sig),
        ("two lines", "o\n5\n\n" + sig),
        ("empty extension line", body.replace("\ntime", "\n\ntime") + "\n" + sig),
        ("empty size", body.replace("\n5\n", "\n\n") + "\n" + sig),
        ("root of 64 bytes", body.replace(root, base64.b64encode(ROOT * 2).decode()) + "\n" + sig),
        ("hyphen dash", body + "\n" + sig.replace("—", "-")),
        ("spaced key name", body + "\n" + sig.replace("— o ", "— o x ")),
        ("plus key name", body + "\n" + sig.replace("— o ", "— o+x ")),
        ("bad base64 signature", body + "\n" + sig.replace("AAAA", "AA*A", 1)),
        ("tiny signature", body + "\n— o " + base64.b64encode(b"abcd").decode() + "\n"),
    ]


@pytest.mark.parametrize(("desc", "text"), _malformed_variants(), ids=lambda v: str(v)[:24])
def test_parse_is_strict(desc: str, text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        parse_checkpoint(text)


def test_a_non_ed25519_signature_by_our_name_and_id_is_rejected(key: Ed25519PrivateKey) -> None:
    checkpoint = create_checkpoint("o", 1, ROOT, AT)
    kid = key_id("o", key)
    forged = checkpoint.body() + "\n— o " + base64.b64encode(kid + b"x" * 10).decode() + "\n"
    assert parse_checkpoint(forged).checkpoint == checkpoint
    with pytest.raises(CheckpointSignatureError):
        verify_checkpoint(forged, key.public_key())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root_hash": ROOT, "time": "2024-05-01T12:30:05Z"},
        {"origin": "o", "size": 1, "root_hash": ROOT, "time": None, "extensions": ("",)},
        {"origin": "o", "size": 1, "root_hash": ROOT, "time": None, "extensions": ("a\nb",)},
        {"origin": "a\nb", "size": 1, "root_hash": ROOT, "time": "2024-05-01T12:30:05Z"},
        {"origin": "o", "size": -1, "root_hash": ROOT, "time": "2024-05-01T12:30:05Z"},
        {"origin": "o", "size": True, "root_hash": ROOT, "time": "2024-05-01T12:30:05Z"},
        {"origin": "o", "size": 1, "root_hash": ROOT[:8], "time": "2024-05-01T12:30:05Z"},
        {"origin": "o", "size": 1, "root_hash": ROOT, "time": "yesterday"},
    ],
)
def test_checkpoint_fields_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]


def test_sign_note_refuses_text_that_would_not_parse(key: Ed25519PrivateKey) -> None:
    with pytest.raises(MalformedCheckpointError):
        sign_note("no newline", "o", key)
    with pytest.raises(MalformedCheckpointError):
        sign_note("a\rb\n", "o", key)
    with pytest.raises(MalformedCheckpointError):
        sign_note("text\n", "bad name", key)


ORIGINS = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="+"),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    origin=ORIGINS,
    size=st.integers(min_value=0, max_value=2**63),
    root=st.binary(min_size=32, max_size=32),
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)
def test_sign_parse_verify_round_trip(
    origin: str, size: int, root: bytes, moment: datetime
) -> None:
    key = _ROUND_TRIP_KEY
    checkpoint = create_checkpoint(origin, size, root, moment)
    note = sign_checkpoint(checkpoint, key)
    assert parse_checkpoint(note).checkpoint == checkpoint
    assert verify_checkpoint(note, key.public_key()) == checkpoint


_ROUND_TRIP_KEY = Ed25519PrivateKey.generate()
