"""The standalone scripts/verify_bundle.py against bundles built with the library, intact and
tampered in every way SPEC §5 requires to be detected."""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from capa.audit.keys import public_key_pem
from capa.audit.leaves import event_leaf_hash
from capa.audit.leaves import leaf_of as leaf_of_stored
from capa.audit.merkle import MerkleTree
from capa.audit.notes import create_checkpoint, sign_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_bundle.py"
ORIGIN = "capa.example/acme-quality"
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# Global order of a small store: three records interleaved, as the event store would hold them.
EVENTS = [
    ("NC-0001", 1, "Nonconformity.Raised"),
    ("NC-0002", 1, "Nonconformity.Raised"),
    ("NC-0001", 2, "Nonconformity.Contained"),
    ("CA-0001", 1, "CorrectiveAction.Opened"),
    ("NC-0001", 3, "Nonconformity.Linked"),
    ("CA-0001", 2, "CorrectiveAction.Investigated"),
    ("NC-0002", 2, "Nonconformity.Assessed"),
    ("CA-0001", 3, "CorrectiveAction.Approved"),
]

KEY = Ed25519PrivateKey.generate()


def make_events() -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for position, (record_id, version, event_type) in enumerate(EVENTS, start=1):
        # Stored bytes are opaque to the verifier: include bytes that are not valid UTF-8.
        state = json.dumps({"n": position, "note": "é"}).encode() + b"\x00\xff"
        events.append(
            {
                "position": position,
                "record_id": record_id,
                "version": version,
                "event_type": event_type,
                "state_b64": base64.b64encode(state).decode(),
            }
        )
    return events


def leaf_of(event: dict[str, object]) -> bytes:
    return event_leaf_hash(
        event["position"],  # type: ignore[arg-type]
        event["record_id"],  # type: ignore[arg-type]
        event["version"],  # type: ignore[arg-type]
        event["event_type"],  # type: ignore[arg-type]
        base64.b64decode(event["state_b64"]),  # type: ignore[arg-type]
    )


def signed_checkpoint(
    events: list[dict[str, object]], size: int | None = None, key: Ed25519PrivateKey = KEY
) -> str:
    tree = MerkleTree([leaf_of(e) for e in events])
    size = len(events) if size is None else size
    return sign_checkpoint(create_checkpoint(ORIGIN, size, tree.root(size), AT), key)


def write_events(
    bundle: Path, events: list[dict[str, object]], *, leaf_hashes: bool = True
) -> None:
    lines = []
    for event in events:
        row = dict(event)
        if leaf_hashes:
            row["leaf_hash"] = leaf_of(event).hex()
        lines.append(json.dumps(row, sort_keys=True) + "\n")
    (bundle / "events.jsonl").write_text("".join(lines), encoding="utf-8")


def refresh_manifest(bundle: Path) -> None:
    """Recompute the unsigned manifest, as anyone editing a bundle can."""
    events = (bundle / "events.jsonl").read_text(encoding="utf-8").splitlines()
    names = ("events.jsonl", "checkpoint.txt", "public_key.pem")
    manifest = {
        "event_count": len(events),
        "tool_version": "0.1.0",
        "sha256": {n: hashlib.sha256((bundle / n).read_bytes()).hexdigest() for n in names},
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def build_bundle(
    path: Path, events: list[dict[str, object]] | None = None, key: Ed25519PrivateKey = KEY
) -> Path:
    """Write a bundle the way `capa audit export` is to write it."""
    events = make_events() if events is None else events
    path.mkdir()
    write_events(path, events)
    (path / "checkpoint.txt").write_text(signed_checkpoint(events, key=key), encoding="utf-8")
    (path / "public_key.pem").write_bytes(public_key_pem(key))
    refresh_manifest(path)
    return path


def read_events(bundle: Path) -> list[dict[str, object]]:
    lines = (bundle / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def rewrite_events(bundle: Path, events: list[dict[str, object]], *, rehash: bool = False) -> None:
    """Replace events.jsonl and the manifest; leaf_hash fields are recomputed only if ``rehash``."""
    if rehash:
        for event in events:
            event.pop("leaf_hash", None)
        write_events(bundle, events)
    else:
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events)
        (bundle / "events.jsonl").write_text(text, encoding="utf-8")
    refresh_manifest(bundle)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    assert len((result.stdout + result.stderr).strip().splitlines()) == 1
    return result


def assert_fails(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 6, result.stdout + result.stderr
    assert result.stderr.startswith("FAIL: ")
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return build_bundle(tmp_path / "bundle")


def root_hex(events: list[dict[str, object]]) -> str:
    return MerkleTree([leaf_of(e) for e in events]).root().hex()


# --- intact bundles ------------------------------------------------------------------------------


def test_intact_directory_bundle(bundle: Path) -> None:
    result = run(bundle)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: 8 events, root {root_hex(make_events())}")
    assert hashlib.sha256(KEY.public_key().public_bytes_raw()).hexdigest() in result.stdout
    assert result.stderr == ""


def test_intact_zip_bundle(bundle: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        for file in bundle.iterdir():
            archive.write(file, file.name)
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        for file in bundle.iterdir():
            archive.write(file, f"export-2024-05-01/{file.name}")
    for path in (flat, nested):
        result = run(path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK: 8 events")


def test_bundle_without_leaf_hashes_still_verifies(bundle: Path) -> None:
    write_events(bundle, make_events(), leaf_hashes=False)
    refresh_manifest(bundle)
    assert run(bundle).returncode == 0


def test_empty_log_verifies(tmp_path: Path) -> None:
    assert run(build_bundle(tmp_path / "empty", events=[])).stdout.startswith("OK: 0 events")


def test_earlier_checkpoints_kept_by_an_auditor(bundle: Path, tmp_path: Path) -> None:
    for size in (0, 1, 5, 8):
        kept = tmp_path / f"kept-{size}.txt"
        kept.write_text(signed_checkpoint(make_events(), size), encoding="utf-8")
        result = run(bundle, "--checkpoint", kept)
        assert result.returncode == 0, result.stderr
        assert f"consistent with {kept} ({size} events)" in result.stdout


def test_pinned_public_key(bundle: Path, tmp_path: Path) -> None:
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(public_key_pem(KEY))
    assert run(bundle, "--public-key", trusted).returncode == 0


# --- tampering -----------------------------------------------------------------------------------


def test_changed_byte_in_a_stored_event(bundle: Path) -> None:
    events = read_events(bundle)
    state = bytearray(base64.b64decode(events[3]["state_b64"]))  # type: ignore[arg-type]
    state[2] ^= 0x01
    events[3]["state_b64"] = base64.b64encode(bytes(state)).decode()
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 4 (record CA-0001 version 1)", "leaf hash")


def test_changed_byte_with_its_leaf_hash_recomputed(bundle: Path) -> None:
    # Without the help of the per-event hash only the signed root can tell, not where.
    events = read_events(bundle)
    events[3]["state_b64"] = base64.b64encode(b"forged").decode()
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "checkpoint.txt", "not the signed root")


def test_changed_record_id_version_or_type(bundle: Path) -> None:
    for field, value in [("record_id", "NC-0009"), ("event_type", "X"), ("version", 3)]:
        events = read_events(bundle)
        events[6][field] = value
        rewrite_events(bundle, events)
        assert_fails(run(bundle), "position 7")


def test_deleted_middle_event(bundle: Path) -> None:
    events = read_events(bundle)
    del events[3]
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 4: found position 5 (record NC-0001 version 3)")


def test_deleted_middle_event_with_positions_renumbered(bundle: Path) -> None:
    events = read_events(bundle)
    del events[2]  # NC-0001 version 2
    for position, event in enumerate(events, start=1):
        event["position"] = position
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "position 4 (record NC-0001 version 3)", "follows version 1")


def test_deleted_tail_event(bundle: Path) -> None:
    events = read_events(bundle)
    del events[-1]
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 8: missing", "covers 8 events")


def test_inserted_event(bundle: Path) -> None:
    events = read_events(bundle)
    forged = dict(events[3], record_id="NC-0003", version=1, event_type="Nonconformity.Raised")
    forged["leaf_hash"] = leaf_of(forged).hex()
    events.insert(3, forged)  # claims position 4 too: the next line holds the wrong position
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 5: found position 4 (record CA-0001 version 1)")


def test_inserted_event_with_positions_renumbered(bundle: Path) -> None:
    events = read_events(bundle)
    forged = dict(events[0], record_id="NC-0003")
    events.insert(4, forged)
    for position, event in enumerate(events, start=1):
        event["position"] = position
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "position 9 (record CA-0001 version 3)", "not covered")


def test_appended_event(bundle: Path) -> None:
    events = read_events(bundle)
    events.append(dict(events[-1], position=9, version=4))
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "position 9 (record CA-0001 version 4)", "not covered")


def test_swapped_events(bundle: Path) -> None:
    events = read_events(bundle)
    events[2], events[3] = events[3], events[2]
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 3: found position 4 (record CA-0001 version 1)")


def test_swapped_events_with_positions_renumbered(bundle: Path) -> None:
    events = read_events(bundle)
    events[4], events[2] = events[2], events[4]  # NC-0001 versions 3 and 2 trade places
    for position, event in enumerate(events, start=1):
        event["position"] = position
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "position 3 (record NC-0001 version 3)", "follows version 1")


def test_swapped_events_of_different_records_renumbered(bundle: Path) -> None:
    events = read_events(bundle)
    events[0], events[1] = events[1], events[0]
    for position, event in enumerate(events, start=1):
        event["position"] = position
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "not the signed root")


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n8\n", "\n9\n"), ("acme-quality\n", "acme-qualitx\n"), ("12:00:00Z", "12:00:01Z")],
)
def test_forged_checkpoint(bundle: Path, old: str, new: str) -> None:
    checkpoint = bundle / "checkpoint.txt"
    checkpoint.write_text(checkpoint.read_text(encoding="utf-8").replace(old, new, 1))
    refresh_manifest(bundle)
    assert_fails(run(bundle), "checkpoint.txt", "forged")


def test_forged_checkpoint_root(bundle: Path) -> None:
    checkpoint = bundle / "checkpoint.txt"
    lines = checkpoint.read_text(encoding="utf-8").split("\n")
    lines[2] = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    checkpoint.write_text("\n".join(lines), encoding="utf-8")
    refresh_manifest(bundle)
    assert_fails(run(bundle), "checkpoint.txt", "forged")


def test_damaged_checkpoint_signature(bundle: Path) -> None:
    checkpoint = bundle / "checkpoint.txt"
    head, blob = checkpoint.read_text(encoding="utf-8").rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 0x80
    checkpoint.write_text(f"{head} {base64.b64encode(bytes(raw)).decode()}\n", encoding="utf-8")
    refresh_manifest(bundle)
    assert_fails(run(bundle), "checkpoint.txt", "forged")


def test_malformed_checkpoint(bundle: Path) -> None:
    (bundle / "checkpoint.txt").write_text("not a checkpoint\n", encoding="utf-8")
    refresh_manifest(bundle)
    assert_fails(run(bundle), "checkpoint.txt: malformed")


def test_wrong_public_key(bundle: Path) -> None:
    (bundle / "public_key.pem").write_bytes(public_key_pem(Ed25519PrivateKey.generate()))
    refresh_manifest(bundle)
    assert_fails(run(bundle), "checkpoint.txt: not signed by the public key")


def test_whole_bundle_re_signed_with_another_key(tmp_path: Path) -> None:
    events = make_events()
    events[3]["state_b64"] = base64.b64encode(b"forged").decode()
    forged = build_bundle(tmp_path / "forged", events, key=Ed25519PrivateKey.generate())
    # Self-consistent, so only the key the auditor trusts or a checkpoint they kept can tell.
    assert run(forged).returncode == 0
    trusted = tmp_path / "trusted.pem"
    trusted.write_bytes(public_key_pem(KEY))
    assert_fails(run(forged, "--public-key", trusted), "not the key given with --public-key")
    kept = tmp_path / "kept.txt"
    kept.write_text(signed_checkpoint(make_events(), 5), encoding="utf-8")
    assert_fails(run(forged, "--checkpoint", kept), str(kept), "not signed by the public key")


def test_history_rewritten_and_re_signed_with_the_store_key(tmp_path: Path) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_text(signed_checkpoint(make_events(), 6), encoding="utf-8")
    events = make_events()
    events[1]["state_b64"] = base64.b64encode(b"rewritten").decode()
    rewritten = build_bundle(tmp_path / "rewritten", events)
    assert run(rewritten).returncode == 0
    assert_fails(run(rewritten, "--checkpoint", kept), "events 1..6", "rewritten")


def test_history_truncated_and_re_signed(tmp_path: Path) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_text(signed_checkpoint(make_events(), 8), encoding="utf-8")
    truncated = build_bundle(tmp_path / "truncated", make_events()[:6])
    assert run(truncated).returncode == 0
    assert_fails(run(truncated, "--checkpoint", kept), "position 7: missing", "covers 8 events")


def test_kept_checkpoint_of_another_log(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    tree = MerkleTree([leaf_of(e) for e in make_events()])
    other.write_text(
        sign_checkpoint(create_checkpoint("elsewhere.example/log", 3, tree.root(3), AT), KEY),
        encoding="utf-8",
    )
    assert_fails(run(bundle, "--checkpoint", other), "elsewhere.example/log")


@pytest.mark.parametrize("name", ["events.jsonl", "checkpoint.txt", "public_key.pem"])
def test_manifest_digest_mismatch(bundle: Path, name: str) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["sha256"][name] = hashlib.sha256(b"something else").hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert_fails(run(bundle), "manifest.json", name)


def test_manifest_event_count_mismatch(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["event_count"] = 7
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert_fails(run(bundle), "manifest.json: event_count 7, bundle has 8")


def test_events_file_changed_behind_the_manifest(bundle: Path) -> None:
    events_file = bundle / "events.jsonl"
    events_file.write_text(events_file.read_text(encoding="utf-8").replace('": ', '":  ', 1))
    assert_fails(run(bundle), "manifest.json", "events.jsonl")


def test_state_that_is_not_base64(bundle: Path) -> None:
    events = read_events(bundle)
    events[1]["state_b64"] = "not*base64"
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 2 (record NC-0002 version 1)", "not base64")


# --- unusable input ------------------------------------------------------------------------------


def assert_unusable(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment in result.stderr


def test_missing_bundle(tmp_path: Path) -> None:
    assert_unusable(run(tmp_path / "nowhere"), "no such file or directory")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "bundle.zip").write_bytes(b"plain text")
    assert_unusable(run(tmp_path / "bundle.zip"), "not a directory or a readable zip")


@pytest.mark.parametrize(
    "name", ["events.jsonl", "checkpoint.txt", "public_key.pem", "manifest.json"]
)
def test_missing_file(bundle: Path, name: str) -> None:
    (bundle / name).unlink()
    assert_unusable(run(bundle), f"missing or unreadable {name}")


def test_bad_json_line(bundle: Path) -> None:
    with (bundle / "events.jsonl").open("a", encoding="utf-8") as out:
        out.write("{not json\n")
    refresh_manifest(bundle)
    assert_unusable(run(bundle), "events.jsonl line 9: not valid JSON")


def test_event_without_required_fields(bundle: Path) -> None:
    events = read_events(bundle)
    del events[2]["record_id"]
    rewrite_events(bundle, events)
    assert_unusable(run(bundle), "events.jsonl line 3: missing or mistyped")


@pytest.mark.parametrize("content", ["[1, 2", "{}", '{"event_count": 8}'])
def test_bad_manifest(bundle: Path, content: str) -> None:
    (bundle / "manifest.json").write_text(content, encoding="utf-8")
    assert_unusable(run(bundle), "manifest.json")


def test_bad_public_key(bundle: Path) -> None:
    (bundle / "public_key.pem").write_text("junk", encoding="utf-8")
    refresh_manifest(bundle)
    assert_unusable(run(bundle), "public_key.pem: not a PEM Ed25519 public key")


def test_missing_kept_checkpoint(bundle: Path, tmp_path: Path) -> None:
    assert_unusable(run(bundle, "--checkpoint", tmp_path / "absent.txt"), "absent.txt")


def test_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-I", str(SCRIPT)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --- standalone ----------------------------------------------------------------------------------


def test_script_uses_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"cryptography"}


def test_script_runs_from_a_copy_outside_the_project(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "verify_bundle.py"
    shutil.copy(SCRIPT, copy)
    result = subprocess.run(
        [sys.executable, "-I", str(copy), str(bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr


# --- readable fields -----------------------------------------------------------------------------


def stored(fields: dict[str, object]) -> str:
    """A state as the store's JSON transcoder writes it, base64."""
    state = {"timestamp": {"_type_": "datetime_iso", "_data_": "2024-05-01T14:00:00+02:00"},
             **fields}
    return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def readable_events() -> list[dict[str, object]]:
    """Two events of one record, with what capa's exporter shows for reading."""
    from capa.audit.bundle_files import readable_fields

    rows = [
        ("a1" * 16, 1, "capa.domain.nonconformity:Nonconformity.Raised",
         stored({"originator_topic": "capa.domain.nonconformity:Nonconformity", "actor": "jchen",
                 "ref": "NC-0001", "title": "Scratched lens", "count": 1, "flag": True})),
        ("a1" * 16, 2, "capa.domain.nonconformity:Nonconformity.Contained",
         stored({"actor": "jchen", "action": "Lot held", "class_version": 2,
                 "password_hash": "x"})),
    ]
    refs: dict[str, str] = {}
    events = []
    for position, (record_id, version, event_type, state) in enumerate(rows, start=1):
        event: dict[str, object] = {"position": position, "record_id": record_id,
                                    "version": version, "event_type": event_type,
                                    "state_b64": state}
        event.update(readable_fields(record_id, version, event_type,
                                     base64.b64decode(state), refs))
        events.append(event)
    return events


def test_readable_fields_as_the_exporter_derives_them_verify(tmp_path: Path) -> None:
    events = readable_events()
    assert events[1]["record"] == "NC-0001"
    assert events[1]["type"] == "Nonconformity.Contained"
    assert events[0]["time"] == "2024-05-01T12:00:00Z"
    assert events[1]["data"] == {"actor": "jchen", "action": "Lot held"}
    result = run(build_bundle(tmp_path / "bundle", events))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda e: e["data"].update(title="Forged"),
         'the readable field data.title reads "Forged", but the stored event has "Scratched lens"'),
        (lambda e: e.update(actor="mallory"), 'readable field actor reads "mallory"'),
        (lambda e: e.update(time="2024-05-01T12:00:01Z"), "readable field time reads"),
        (lambda e: e.update(type="Nonconformity.Closed"), "readable field type reads"),
        (lambda e: e.update(record="NC-0002"), 'readable field record reads "NC-0002"'),
        (lambda e: e["data"].update(count=1.0), "readable field data.count reads 1.0"),
        (lambda e: e["data"].update(flag=1), "readable field data.flag reads 1"),
        (lambda e: e["data"].pop("title"), "readable field data.title is absent"),
        (lambda e: e["data"].update(approved=True), "data.approved reads true, but the stored "
         "event has none"),
        (lambda e: e.pop("actor"), "the readable field actor is missing"),
        (lambda e: e.update(note="approved"), "a field 'note' that no stored event gives"),
    ],
)
def test_a_forged_readable_field_fails(tmp_path: Path, forge: object, message: str) -> None:
    events = readable_events()
    bundle = build_bundle(tmp_path / "bundle", events)
    events = read_events(bundle)
    forge(events[0])  # type: ignore[operator]
    rewrite_events(bundle, events)
    assert_fails(run(bundle), f"position 1 (record {'a1' * 16} version 1): ", message)


def test_readable_fields_are_checked_once_the_bytes_are_proved(tmp_path: Path) -> None:
    # Bytes and leaf hash forged together: the signed root says so first.
    events = readable_events()
    bundle = build_bundle(tmp_path / "bundle", events)
    events = read_events(bundle)
    events[1]["state_b64"] = stored({"actor": "mallory", "action": "Lot held"})
    rewrite_events(bundle, events, rehash=True)
    assert_fails(run(bundle), "not the signed root")


def test_opaque_bytes_read_as_nothing(bundle: Path) -> None:
    events = read_events(bundle)
    for event in events:  # not JSON: the record by its id, the type as stored, nothing else
        event.update(record=event["record_id"], type=event["event_type"], time=None, actor=None,
                     data=None)
    rewrite_events(bundle, events)
    assert run(bundle).returncode == 0
    events[2]["actor"] = "jchen"  # a claim the stored bytes do not make
    rewrite_events(bundle, events)
    assert_fails(run(bundle), "position 3 (record NC-0001 version 2)", "readable field actor")


def test_script_leaf_hash_is_capas() -> None:
    """The script keeps its own copy of the leaf encoding (it runs without capa installed);
    both must hash every stored event alike, or a valid bundle would fail offline."""
    spec = importlib.util.spec_from_file_location("verify_bundle_copy", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    cases = [(1, "0" * 32, 1, "capa.domain.nonconformity:Nonconformity.Raised", b'{"a":1}'),
             (4097, "f" * 32, 12, "capa.domain.user:User.UserAdded", b""),
             (7, "NC-é", 0, "Ré", b"\x00\xff\n")]
    for position, record_id, version, event_type, state in cases:
        expected = event_leaf_hash(position, record_id, version, event_type, state)
        assert script.leaf_hash(position, record_id, version, event_type, state) == expected
        assert leaf_of_stored(position, (0, record_id, version, event_type, state)) == expected
