"""The audit operations (SPEC §5, §9.7, §9.8) on a store: checkpoints, verification, bundles,
inclusion and consistency proofs (capa.audit), and a verified copy to another store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from capa.app.core import Core
from capa.app.operations import operation
from capa.app.storecopy import BATCH_SIZE, CopyReport, copy_store
from capa.audit.bundle import export_bundle
from capa.audit.checkpoints import make_checkpoint
from capa.audit.proofs import consistency_between, prove_record
from capa.audit.verification import verify_store
from capa.audit.vkeys import Verifier


class Audit:
    """The audit trail of the core's store, checked and handed out."""

    def __init__(self, core: Core) -> None:
        self.core = core

    @operation("audit checkpoint")
    def checkpoint(self, key_path: Path, log_path: Path) -> dict[str, Any]:
        """Catch the ledger up, sign a checkpoint of the whole log and append it to the log."""
        return make_checkpoint(self.core, key_path, log_path)

    @operation("audit verify")
    def verify(self, public_key: Ed25519PublicKey | None, log_path: Path | None,
               against: Iterable[Path] = (), witnesses: Sequence[Verifier] = (), *,
               key_path: Path | None = None) -> dict[str, Any]:
        """Verify the store's events, checkpoint log, kept checkpoints and caches."""
        return verify_store(self.core, public_key, log_path, against, witnesses,
                            key_path=key_path)

    @operation("audit export")
    def export(self, out: Path, key_path: Path, log_path: Path,
               public_key: Ed25519PublicKey) -> dict[str, Any]:
        """Verify the store, then write a bundle of every event and a checkpoint over them."""
        return export_bundle(self.core, out, key_path, log_path, public_key)

    @operation("audit prove")
    def prove(self, ref: str, log_path: Path,
              public_key: Ed25519PublicKey | None) -> dict[str, Any]:
        """Inclusion proofs of every event of one record."""
        return prove_record(self.core, ref, log_path, public_key)

    @operation("audit consistency")
    def consistency(self, public_key: Ed25519PublicKey, older: Path, newer: Path | None,
                    log_path: Path) -> dict[str, Any]:
        """The consistency proof from one checkpoint to a later one."""
        return consistency_between(self.core, public_key, older, newer, log_path)

    @operation("store copy")
    def copy_store(self, target: str, *, source_name: str = "",
                   batch_size: int = BATCH_SIZE) -> CopyReport:
        """Copy every stored event into the store at `target`, then verify the copy."""
        return copy_store(self.core, target, source_name=source_name, batch_size=batch_size)
