"""Property-based bad input for every `nc` and `ca` command (SPEC §8): whatever the values, no
traceback, one JSON error, exit 1, 2, 3 or 4, and no event written; on both back ends.

Each example takes a command line that is well formed for the store's records and spoils one
part of it: an id, a choice, a number, a date, a user, a required text left blank, an unknown
option, or a required option left out. Free texts are only blanked: any other text is a valid
title or note and would rightly be written. Commands run in-process through capa.cli.main.main
under a `capa login` session, which keeps each run free of the deliberately slow password hash.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capa.cli.main import main
from capa.domain.values import (
    ActionType,
    CauseCategory,
    Disposition,
    NCStatus,
    RootCauseMethod,
    Severity,
    Source,
)
from tests.support.backends import BACKENDS, PASSWORD, create_store, event_count, new_target

YEAR = dt.datetime.now(dt.UTC).year
NC1, NC2 = f"NC-{YEAR}-0001", f"NC-{YEAR}-0002"
CA1 = f"CA-{YEAR}-0001"
FUZZER = "qfuzz"
CAST = {FUZZER: ("Quinn Fuzz", ["admin", "quality", "owner", "reporter"])}
DUE = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)).isoformat()
TODAY = dt.datetime.now(dt.UTC).date().isoformat()
EXAMPLES = {"sqlite": 30, "postgres": 10}


def _choices(values: object) -> frozenset[str]:
    return frozenset(str(v) for v in values)  # type: ignore[attr-defined]


#: Slot kinds: what a valid value looks like, so that a spoiled one certainly is not.
SLOTS: dict[str, frozenset[str] | None] = {
    "source": _choices(Source), "severity": _choices(Severity),
    "disposition": _choices(Disposition), "method": _choices(RootCauseMethod),
    "category": _choices(CauseCategory), "type": _choices(ActionType),
    "format": frozenset({"md", "html", "pdf"}),
    "status": _choices(NCStatus) | {"investigated", "planned", "approved", "implemented",
                                    "verified"},
    "field": frozenset({"title", "description", "source", "severity", "product", "lot",
                        "external_ref", "external-ref", "detected_on", "detected-on"}),
}

#: Each command: its words and its arguments as (option or None for a positional, kind, value);
#: a kind ending in "?" marks an optional option, "free" one where any value is valid.
Spec = tuple[tuple[str, ...], tuple[tuple[str | None, str, str], ...]]
COMMANDS: dict[str, Spec] = {
    "nc raise": (("nc", "raise"), (("--title", "text", "Burr"), ("--description", "text", "d"),
                                   ("--source", "source", "process"),
                                   ("--severity", "severity", "minor"),
                                   ("--detected-on", "past-date?", "2026-01-05"))),
    "nc contain": (("nc", "contain"), ((None, "nc", NC1), ("--action", "text", "Sorted"),
                                       ("--disposition", "disposition?", "rework"))),
    "nc assess": (("nc", "assess"), ((None, "nc", NC1), ("--impact", "1-5", "3"),
                                     ("--likelihood", "1-5", "2"),
                                     ("--no-capa-required", "flag", ""),
                                     ("--rationale", "text", "Minor"))),
    "nc link": (("nc", "link"), ((None, "nc", NC1), (None, "ca", CA1))),
    "nc close": (("nc", "close"), ((None, "nc", NC1),)),
    "nc cancel": (("nc", "cancel"), ((None, "nc", NC1), ("--reason", "text", "Duplicate"))),
    "nc reopen": (("nc", "reopen"), ((None, "nc", NC1), ("--reason", "text", "Recurred"))),
    "nc amend": (("nc", "amend"), ((None, "nc", NC1), ("--field", "field", "lot"),
                                   ("--value", "free", "L7"), ("--reason", "text", "Typo"))),
    "nc show": (("nc", "show"), ((None, "nc", NC1), ("--version", "version?", "1"))),
    "nc list": (("nc", "list"), (("--status", "status?", "open"),)),
    "ca open": (("ca", "open"), (("--title", "text", "Cracks"), ("--problem", "text", "p"),
                                 ("--owner", "user", FUZZER), ("--nc", "nc?", NC2))),
    "ca investigate": (("ca", "investigate"), ((None, "ca", CA1), ("--method", "method", "other"),
                                               ("--root-cause", "text", "Worn insert"),
                                               ("--category", "category", "machine"))),
    "ca plan": (("ca", "plan"), ((None, "ca", CA1), ("--action", "text", "Replace"),
                                 ("--assignee", "free", FUZZER), ("--due", "date", DUE),
                                 ("--type", "type", "corrective"))),
    "ca approve": (("ca", "approve"), ((None, "ca", CA1),)),
    "ca complete": (("ca", "complete"), ((None, "ca", CA1), (None, "item", "A1"),
                                         ("--note", "text", "Done"))),
    "ca extend": (("ca", "extend"), ((None, "ca", CA1), (None, "item", "A1"),
                                     ("--due", "date", DUE), ("--reason", "text", "Parts late"))),
    "ca verify": (("ca", "verify"), ((None, "ca", CA1), ("--effective", "flag", ""),
                                     ("--note", "text", "Fine"))),
    "ca close": (("ca", "close"), ((None, "ca", CA1),)),
    "ca cancel": (("ca", "cancel"), ((None, "ca", CA1), ("--reason", "text", "Merged"))),
    "ca reopen": (("ca", "reopen"), ((None, "ca", CA1), ("--reason", "text", "Recurred"))),
    "ca show": (("ca", "show"), ((None, "ca", CA1), ("--as-of", "moment?", "2026-01-01"))),
    "ca list": (("ca", "list"), (("--status", "status?", "open"),)),
    "audit review": (("audit", "review"), (("--from", "date", "2026-01-01"),
                                           ("--to", "date", TODAY))),
    "audit review --sign": (("audit", "review"), (("--from", "date", "2026-01-01"),
                                                  ("--to", "date", TODAY),
                                                  ("--sign", "flag", ""))),
    "management-review": (("management-review",), (("--from", "date", "2026-01-01"),
                                                   ("--to", "date", TODAY),
                                                   ("--out", "free", "/dev/null"),
                                                   ("--format", "format", "md"))),
}
#: Commands whose spoiled form may still be a successful read (a filter that matches nothing).
READS = {"nc show", "nc list", "ca show", "ca list"}

_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")


def _not_a_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text.strip())
    except ValueError:
        return True
    return False


def spoiled(kind: str) -> st.SearchStrategy[str]:
    """A value that a slot of this kind certainly refuses."""
    anything = st.text(max_size=40)
    if kind in SLOTS:
        valid = SLOTS[kind] or frozenset()
        return anything.filter(lambda v: v.strip().lower() not in valid)
    if kind in ("nc", "ca"):
        wrong = [NC1 if kind == "ca" else CA1, f"{kind.upper()}-{YEAR}-9999", "NC-1", "",
                 f"{kind.upper()}-{YEAR}-00001x"]
        return st.one_of(st.sampled_from(wrong), anything.filter(
            lambda v: v.strip().upper() not in (NC1, NC2, CA1)))
    if kind == "item":
        return anything.filter(lambda v: v.strip().upper() != "A1")
    if kind == "user":
        return anything.filter(lambda v: v.strip().lower() != FUZZER)
    if kind == "1-5":
        return st.one_of(st.integers().filter(lambda n: not 1 <= n <= 5).map(str),
                         anything.filter(lambda v: not v.strip().isdigit()))
    if kind == "version":
        return st.one_of(st.integers(max_value=0).map(str), st.integers(min_value=50).map(str),
                         anything.filter(lambda v: not v.strip().isdigit()))
    if kind in ("date", "past-date", "moment"):
        future = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=400)).isoformat()
        fixed = ["2026-02-30", "2026-13-01", "20260101", "yesterday", ""]
        if kind == "past-date":
            fixed.append(future)
        return st.one_of(st.sampled_from(fixed), anything.filter(
            lambda v: _not_a_date(v) and not _DATE.fullmatch(v)
            and not (kind == "moment" and _is_moment(v))))
    if kind == "text":
        return st.sampled_from(["", " ", "\t", "\n", "   \n "])
    if kind == "flag":
        return st.just("--bogus-flag")
    return st.just("--no-such-option")


def _is_moment(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@st.composite
def bad_command(draw: st.DrawFn, name: str) -> list[str]:
    words, slots = COMMANDS[name]
    index = draw(st.integers(0, len(slots)))  # == len(slots): an unknown option instead
    how = draw(st.sampled_from(["spoil", "spoil", "spoil", "drop"]))
    argv: list[str] = list(words)
    if index < len(slots) and slots[index][1] == "free":
        index = len(slots)  # any value is valid there: spoil the command another way
    for i, (option, marked, value) in enumerate(slots):
        # A kind ending in "?" is an optional option: leaving it out is no mistake.
        kind = marked.rstrip("?")
        if i == index and how == "drop" and option is not None and kind != "flag" \
                and not marked.endswith("?"):
            continue
        if i == index:
            value = draw(spoiled(kind))
            if kind == "flag":
                argv.append(value)
                continue
        if option is not None and kind == "flag":
            argv.append(option)
        elif option is not None:
            argv.append(f"{option}={value}")
        else:
            argv.extend(["--", value] if value.startswith("-") else [value])
    if index == len(slots):
        argv += [f"--{draw(st.from_regex(r'[a-z][a-z-]{0,12}', fullmatch=True))}-x",
                 draw(st.text(max_size=10))]
    return argv


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[str, str, Path]]:
    backend = str(request.param)
    folder = tmp_path_factory.mktemp(f"fuzz-{backend}")
    target = new_target(backend, folder)
    app = create_store(target, CAST)
    with app.acting_as(FUZZER, PASSWORD):
        app.nonconformities.raise_nc(title="Burr", description="d", source="process",
                                     severity="minor")
        app.nonconformities.raise_nc(title="Crack", description="d", source="product",
                                     severity="major")
        app.nonconformities.assess_nc(NC2, impact=4, likelihood=3, capa_required=True)
        app.corrective_actions.open_ca(title="Cracks", problem="p", owner=FUZZER, ncs=[NC2])
        app.corrective_actions.investigate_ca(CA1, method="other", root_cause="Worn insert",
                                              category="machine")
        app.corrective_actions.plan_ca(CA1, action="Replace", assignee=FUZZER, due=DUE,
                                       action_type="corrective")
    app.close()
    sessions = folder / "sessions"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CAPA_SESSION_DIR", str(sessions))
        env.setenv("CAPA_USER", FUZZER)
        env.setenv("CAPA_PASSWORD", PASSWORD)
        with pytest.raises(SystemExit) as done:
            main(["--db", target, "login"])
        assert done.value.code == 0
    yield backend, target, sessions


def run(argv: list[str], target: str) -> int:
    try:
        main(["--db", target, "--json", *argv])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bad_input_is_refused_cleanly_and_writes_nothing(
    name: str, store: tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend, target, sessions = store
    monkeypatch.setenv("CAPA_SESSION_DIR", str(sessions))
    monkeypatch.setenv("CAPA_USER", FUZZER)
    monkeypatch.delenv("CAPA_PASSWORD", raising=False)
    monkeypatch.delenv("CAPA_DB", raising=False)
    before = event_count(target)

    @settings(max_examples=EXAMPLES[backend], deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(argv=bad_command(name))
    def check(argv: list[str]) -> None:
        capsys.readouterr()
        code = run(argv, target)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        if code == 0:
            assert name in READS, (argv, out)
            json.loads(out)
        else:
            assert code in (1, 2, 3, 4), (argv, code, err)
            assert json.loads(err)["error"]["code"] == code, err
            assert out == "", out
        assert event_count(target) == before, (argv, code, out, err)

    check()
