"""P6 (SPEC §13): 8 concurrent clients raising and containing NCs through `capa serve` on
PostgreSQL, against a bare eventsourcing application saving the same events (the same
Nonconformity aggregates, Raised then Contained) from 8 threads in-process, on a second database
of the same PostgreSQL server, in the same run.

Reported: throughput (NCs raised and contained per second) of each, their ratio (target ≥ 0.4),
and the p99 latency of one request (one save for the baseline) and its ratio (target ≤ 3).
Clients use a server session (Bearer token): the memory-hard password check is deliberate and
is measured separately, as one signing request's latency.

    python scripts/bench_server.py [--ncs-per-client 25] [--workers N] [--keys]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capa.adapters.eventlog import store_env  # noqa: E402
from capa.adapters.target import parse_target  # noqa: E402
from capa.app.store import open_store  # noqa: E402
from tests.support.postgres import create_database, embedded_postgres  # noqa: E402

CLIENTS = 8
REPORTER, QUALITY, PASSWORD = "bench-reporter", "bench-quality", "bench-password-1"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _post(url: str, body: Any, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def through_server(uri: str, per_client: int, workers: int = 1,
                   keyed: bool = False) -> tuple[float, list[float], float]:
    app = open_store(uri, create=True)
    app.identity.initialise("Bench", admin=QUALITY, full_name="Bench Quality", password=PASSWORD)
    with app.acting_as(QUALITY, PASSWORD):
        app.identity.grant_role(QUALITY, "quality")
        app.identity.add_user(REPORTER, full_name="Bench Reporter", roles=["reporter"],
                              password=PASSWORD)
    app.close()
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPA_")}
    env["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen([sys.executable, "-m", "capa", "--db", uri, "serve", "--port",
                               str(port), "--workers", str(workers)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        tokens = [_post(base + "/v1/identity/login", {"user": REPORTER, "password": PASSWORD},
                        {})["token"] for _ in range(CLIENTS)]
        latencies: list[float] = []

        def client(n: int) -> list[float]:
            auth = {"Authorization": f"Bearer {REPORTER}:{tokens[n]}"}

            def key(step: str) -> dict[str, str]:
                return {"Idempotency-Key": f"{step}-{n}-{i}"} if keyed else {}

            took = []
            for i in range(per_client):
                t0 = time.perf_counter()
                ref = _post(base + "/v1/nonconformities/raise_nc",
                            {"title": f"Burr {n}-{i}", "description": "Seen at goods-in",
                             "source": "supplier", "severity": "minor"},
                            {**auth, **key("raise")})["id"]
                t1 = time.perf_counter()
                _post(base + "/v1/nonconformities/contain_nc",
                      {"ref": ref, "action": "Quarantined", "disposition": "quarantine"},
                      {**auth, **key("contain")})
                took += [t1 - t0, time.perf_counter() - t1]
            return took

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            for took in pool.map(client, range(CLIENTS)):
                latencies += took
        elapsed = time.perf_counter() - started
        # One signing request, for the record: its password check is memory-hard on purpose.
        nc = _post(base + "/v1/nonconformities/raise_nc",
                   {"title": "Signed", "description": "d", "source": "process",
                    "severity": "minor"}, {"Authorization": f"Bearer {REPORTER}:{tokens[0]}"})
        import base64

        basic = "Basic " + base64.b64encode(f"{QUALITY}:{PASSWORD}".encode()).decode()
        _post(base + "/v1/nonconformities/assess_nc",
              {"ref": nc["id"], "impact": 1, "likelihood": 1, "capa_required": False,
               "rationale": "Cosmetic"}, {"Authorization": basic})
        t0 = time.perf_counter()
        _post(base + "/v1/nonconformities/close_nc", {"ref": nc["id"]}, {"Authorization": basic})
        signing = time.perf_counter() - t0
        return CLIENTS * per_client / elapsed, latencies, signing
    finally:
        server.terminate()
        server.wait(timeout=30)


def bare(uri: str, per_client: int) -> tuple[float, list[float]]:
    from eventsourcing.application import Application

    from capa.domain.nonconformity import Nonconformity
    from capa.domain.record import actor_id

    env = store_env(parse_target(uri), create=True)
    app: Application = Application(env={k.removeprefix("CAPA_"): v for k, v in env.items()}
                                   | env)
    latencies: list[float] = []

    def client(n: int) -> list[float]:
        actor_id.set(REPORTER)
        took = []
        for i in range(per_client):
            nc = Nonconformity.raise_new(ref=f"NC-2026-{n:02d}{i:04d}", title=f"Burr {n}-{i}",
                                         description="Seen at goods-in", source="supplier",
                                         severity="minor", detected_on="2026-12-01",
                                         reported_by=REPORTER)
            t0 = time.perf_counter()
            app.save(nc)
            t1 = time.perf_counter()
            nc.contain("Quarantined", "quarantine")
            app.save(nc)
            took += [t1 - t0, time.perf_counter() - t1]
        return took

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        for took in pool.map(client, range(CLIENTS)):
            latencies += took
    elapsed = time.perf_counter() - started
    app.close()
    return CLIENTS * per_client / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ncs-per-client", type=int, default=25)
    parser.add_argument("--workers", type=int, default=1, help="capa serve --workers")
    parser.add_argument("--keys", action="store_true",
                        help="send an Idempotency-Key with every write")
    options = parser.parse_args()
    with embedded_postgres() as server_uri:
        bare_rate, bare_lat = bare(create_database(server_uri, "bare"), options.ncs_per_client)
        rate, lat, signing = through_server(create_database(server_uri, "served"),
                                            options.ncs_per_client, options.workers,
                                            options.keys)
    print(f"P6 bare eventsourcing, {CLIENTS} threads: {bare_rate:.1f} NCs/s, "
          f"p99 {p99(bare_lat) * 1000:.1f} ms (median {statistics.median(bare_lat) * 1000:.1f})")
    print(f"P6 capa serve, {CLIENTS} clients ({options.workers} worker(s)"
          f"{', idempotency keys' if options.keys else ''}): {rate:.1f} NCs/s, "
          f"p99 {p99(lat) * 1000:.1f} ms (median {statistics.median(lat) * 1000:.1f})")
    print(f"P6 throughput ratio {rate / bare_rate:.2f}x (target >= 0.4x); "
          f"p99 ratio {p99(lat) / p99(bare_lat):.2f}x (target <= 3x)")
    print(f"P6 one signing request (nc close, password checked again): {signing * 1000:.0f} ms")


if __name__ == "__main__":
    main()
