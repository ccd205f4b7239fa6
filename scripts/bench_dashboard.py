"""Benchmark of the dashboard (SPEC §13 P7): the dashboard of 100k NCs against that of 1k NCs.

Usage: .venv/bin/python scripts/bench_dashboard.py [--rows 100000] [--small 1000] [--repeat 5]

P7  `capa dashboard --out FILE` (one process from a `capa login` session, end to end) on a store
    of N NCs against a store of `small` NCs; both stores are filled the same way: NCs imported
    from CSV over 24 months, 7 sources, 3 severities and 400 products, one in two assessed
    (risk levels: most NCs of a store in use are), one in a hundred cancelled. Figures: the
    median time ratio, alternating runs (target <= 2), and the size of the big store's file
    (target <= 1.5 MB).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from benchsupport import PASSWORD, QUALITY, make_store  # noqa: E402

from capa.app.store import open_store  # noqa: E402

CAPA = [sys.executable, "-m", "capa"]
SOURCES = ("process", "supplier", "customer-complaint", "internal-audit", "product",
           "external-audit", "regulatory-inspection")
TITLES = ("Seal strength below limit", "Cracked housing at boss", "Label shows wrong lot",
          "Burr on machined edge", "Resin outside melt-flow specification")
LIMIT = 1_500_000


def _csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_ref", "title", "description", "source", "severity",
                         "product", "lot", "detected_on"])
        for i in range(rows):
            month = i % 24
            writer.writerow([f"BENCH-{i:07d}", TITLES[i % len(TITLES)],
                             f"Observed at station {i % 40}.", SOURCES[i % len(SOURCES)],
                             ("minor", "major", "critical")[i % 3], f"P-{i % 400}",
                             f"L{i % 5000:05d}",
                             f"{2024 + (month + 11) // 12}-{1 + (month + 11) % 12:02d}-"
                             f"{1 + i % 28:02d}"])


def _unsynced(app: Any) -> None:
    """Setting up only: commits of this process skip the disk flush, so that assessing half of
    100k NCs one command at a time takes minutes, not an hour. The timed runs are other
    processes and flush as usual."""
    pool = app.recorder.datastore.pool
    base = type(pool)

    def unsynced(self: Any) -> Any:
        connection = base._create_connection(self)
        connection._sqlite_conn.execute("PRAGMA synchronous = OFF")
        return connection

    pool.__class__ = type("UnsyncedPool", (base,), {"_create_connection": unsynced})


def _store(folder: Path, name: str, rows: int) -> dict[str, str]:
    db, data = folder / f"{name}.db", folder / f"{name}.csv"
    make_store(db)
    _csv(data, rows)
    env = {**os.environ, "CAPA_DB": str(db), "CAPA_USER": QUALITY, "CAPA_PASSWORD": PASSWORD,
           "CAPA_SESSION_DIR": str(folder / f"{name}-session")}
    subprocess.run([*CAPA, "import", str(data)], env=env, check=True, stdout=subprocess.DEVNULL)
    app = open_store(str(db))
    _unsynced(app)  # before the first command opens a connection
    try:
        with app.acting_as(QUALITY, PASSWORD):
            app.read_models.catch_up()  # the import's rows reach the read tables on first use
            refs = [str(r["id"]) for r in app.read_models.sql.query(
                "SELECT id FROM nc_summary ORDER BY sort_key")]
            for i, ref in enumerate(refs):
                if i % 2 == 0:
                    app.nonconformities.assess_nc(ref, impact=1 + i % 5, likelihood=1 + i % 4,
                                                  capa_required=False,
                                                  rationale="Isolated; corrected")
                elif i % 100 == 1:
                    app.nonconformities.cancel_nc(ref, reason="Raised twice by mistake")
            app.read_models.catch_up()
    finally:
        app.close()
    # Like an operator: one `capa login`, then commands from the session.
    subprocess.run([*CAPA, "login"], env=env, check=True, capture_output=True)
    env.pop("CAPA_PASSWORD")
    return env


def _write(env: dict[str, str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*CAPA, "dashboard", "--out", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from benchsupport import compile_capa

    compile_capa()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big, small = _store(folder, "big", args.rows), _store(folder, "small", args.small)
        out_big, out_small = folder / "big.html", folder / "small.html"
        _write(big, out_big)  # warm both
        _write(small, out_small)
        times: dict[str, list[float]] = {"big": [], "small": []}
        for _ in range(args.repeat):
            times["big"].append(_write(big, out_big))
            times["small"].append(_write(small, out_small))
        t_big, t_small = statistics.median(times["big"]), statistics.median(times["small"])
        size_big, size_small = out_big.stat().st_size, out_small.stat().st_size
        print(f"P7 dashboard: {args.rows} NCs {t_big * 1000:.0f} ms, {args.small} NCs "
              f"{t_small * 1000:.0f} ms; ratio {t_big / t_small:.2f} (target <= 2); file "
              f"{size_big:,} bytes at {args.rows} NCs, {size_small:,} at {args.small} "
              f"(target <= {LIMIT:,})")


if __name__ == "__main__":
    main()
