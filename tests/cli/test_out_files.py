"""Files named by --out (report, dashboard, export): a target that cannot be written is refused
before any work with one clear line and exit 2, nothing written; files are replaced atomically;
and `export` keeps the --json contract (exactly one JSON document on stdout)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pytest

from capa.app.application import CapaApplication
from capa.app.intake import Intake
from capa.cli.main import cli
from capa.domain.errors import CapaError

if TYPE_CHECKING:
    from conftest import Capa

#: Every command that writes a file through --out, with the arguments before --out; "{nc}" is
#: replaced by a record id.
WRITERS: dict[str, tuple[str, ...]] = {
    "report": ("report", "{nc}", "--format", "md"),
    "dashboard": ("dashboard",),
    "export-jsonl": ("export", "--format", "jsonl"),
    "export-csv": ("export", "--format", "csv"),
}


def writer(capa: Capa, name: str) -> list[str]:
    args = WRITERS[name]
    if "{nc}" not in args:
        return list(args)
    ref = capa.nc()
    return [ref if arg == "{nc}" else arg for arg in args]


def files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def refused_out(capa: Capa, args: list[str], out: Path, message: str) -> None:
    """Refused with exit 2 and `message`, in --json and in plain text; no traceback (checked
    by Capa.run), nothing on stdout, no event stored and no file written."""
    folder = out.parent if out.parent.is_dir() else capa.folder
    before = files(folder)
    error = capa.refused(*args, "--out", str(out), code=2)
    assert message in error["message"]
    events = capa.events()
    plain = capa.run(*args, "--out", str(out))
    assert (plain.code, plain.stdout) == (2, "")
    assert plain.stderr.startswith("capa: ") and message in plain.stderr
    assert plain.stderr.count("\n") == 1
    assert capa.events() == events
    assert files(folder) == before


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_folder_that_does_not_exist_is_refused(capa: Capa, name: str) -> None:
    args = writer(capa, name)
    missing = capa.folder / "missing"
    refused_out(capa, args, missing / "out.txt", f"folder {str(missing)!r} does not exist")
    assert not missing.exists()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_existing_folder_as_out_is_refused(capa: Capa, name: str) -> None:
    args = writer(capa, name)
    folder = capa.folder / "reports"
    folder.mkdir()
    refused_out(capa, args, folder, "is a directory")
    assert files(folder) == set()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_file_as_the_folder_is_refused(capa: Capa, name: str) -> None:
    args = writer(capa, name)
    plain = capa.folder / "notes.txt"
    plain.write_text("keep", encoding="utf-8")
    refused_out(capa, args, plain / "out.txt", f"{str(plain)!r} is not a folder")
    assert plain.read_text(encoding="utf-8") == "keep"


@pytest.fixture
def unwritable(capa: Capa, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder the user may not write to. Root may write anywhere, so for root the operating
    system's answer for this folder is what a user without the right would get."""
    folder = capa.folder / "locked"
    folder.mkdir()
    (folder / "old.md").write_text("old", encoding="utf-8")
    (folder / "old.md").chmod(0o444)
    folder.chmod(0o555)
    if os.geteuid() == 0:
        access = os.access

        def denied(path: Any, mode: int, **kwargs: Any) -> bool:
            inside = Path(path) == folder or Path(path).parent == folder
            return False if inside and mode & os.W_OK else access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", denied)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_folder_that_is_not_writable_is_refused(capa: Capa, name: str,
                                                  unwritable: Path) -> None:
    args = writer(capa, name)
    refused_out(capa, args, unwritable / "new.md",
                f"folder {str(unwritable)!r} is not writable")
    old = unwritable / "old.md"
    refused_out(capa, args, old, f"{str(old)!r} is not writable")
    assert (unwritable / "old.md").read_text(encoding="utf-8") == "old"


def test_the_refusal_in_a_real_process(capa: Capa) -> None:
    ref = capa.nc()
    before = capa.events()
    missing = capa.folder / "missing"
    for args in (("report", ref, "--format", "md"), ("dashboard",),
                 ("export", "--format", "jsonl")):
        outcome = capa.process(*args, "--out", str(missing / "out.txt"))
        assert outcome.code == 2
        assert outcome.stdout == ""
        assert outcome.stderr == f"capa: folder {str(missing)!r} does not exist\n"
    outcome = capa.process("--json", "export", "--format", "csv", "--out",
                           str(missing / "e.csv"))
    assert (outcome.code, outcome.stdout) == (2, "")
    assert json.loads(outcome.stderr)["error"]["code"] == 2
    assert not missing.exists()
    assert capa.events() == before


# -- writing ----------------------------------------------------------------------------------


def test_files_are_replaced_whole_and_keep_their_mode(capa: Capa) -> None:
    ref = capa.nc()
    out = capa.folder / "r.md"
    out.write_text("an earlier report", encoding="utf-8")
    out.chmod(0o640)
    result = capa.run("--json", "report", ref, "--format", "md", "--out", str(out))
    assert result.code == 0, result.stderr
    assert out.read_text(encoding="utf-8").startswith("# 8D report NC-")
    assert result.json()["bytes"] == out.stat().st_size
    assert out.stat().st_mode & 0o777 == 0o640
    assert not [p for p in files(capa.folder) if p.endswith(".tmp")]


@pytest.mark.parametrize("name", [*WRITERS, "audit-export-zip", "audit-export-folder"])
def test_a_symbolic_link_is_refused_and_its_target_left_alone(capa: Capa, name: str) -> None:
    """SPEC §9.10: whoever placed the link would choose the file written; exit 2, nothing
    written, the file it points to untouched."""
    if name.startswith("audit-export"):
        args = ["audit", "export"]
        suffix = ".zip" if name.endswith("zip") else ""
    else:
        args, suffix = writer(capa, name), ".out"
    real = capa.folder / "precious.txt"
    real.write_text("keep me", encoding="utf-8")
    link = capa.folder / f"link{suffix}"
    link.symlink_to(real)
    before = files(capa.folder)
    outcome = capa.run(*args, "--out", str(link))
    assert outcome.code == 2, outcome.stderr
    assert "symbolic link" in outcome.stderr
    assert link.is_symlink() and real.read_text(encoding="utf-8") == "keep me"
    assert files(capa.folder) == before


def test_a_link_to_a_folder_is_refused_for_a_folder_bundle(capa: Capa) -> None:
    inside = capa.folder / "somewhere"
    inside.mkdir()
    link = capa.folder / "bundle"
    link.symlink_to(inside, target_is_directory=True)
    outcome = capa.run("audit", "export", "--out", str(link))
    assert outcome.code == 2 and "symbolic link" in outcome.stderr
    assert list(inside.iterdir()) == []


def test_a_failure_midway_leaves_the_earlier_file(capa: Capa,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    capa.nc()
    out = capa.folder / "events.jsonl"
    out.write_text("earlier export\n", encoding="utf-8")
    events = Intake.export_events

    def failing(self: CapaApplication) -> Iterator[dict[str, Any]]:
        for number, event in enumerate(events(self)):
            if number == 2:
                raise CapaError("the store went away")
            yield event

    monkeypatch.setattr(Intake, "export_events", failing)
    outcome = capa.run("export", "--format", "jsonl", "--out", str(out))
    assert outcome.code == 1
    assert outcome.stderr == "capa: the store went away\n"
    assert out.read_text(encoding="utf-8") == "earlier export\n"
    assert not [p for p in files(capa.folder) if p.endswith(".tmp")]


# -- export and --json ------------------------------------------------------------------------


def plain_events(capa: Capa) -> list[dict[str, Any]]:
    outcome = capa.run("export", "--format", "jsonl")
    assert outcome.code == 0
    return [json.loads(line) for line in outcome.stdout.splitlines()]


def plain_rows(capa: Capa) -> list[dict[str, str]]:
    outcome = capa.run("export", "--format", "csv")
    assert outcome.code == 0
    return list(csv.DictReader(io.StringIO(outcome.stdout)))


@pytest.mark.parametrize("where", ["before", "after"])
def test_export_json_without_out_is_one_document_of_the_data(capa: Capa, where: str) -> None:
    first = capa.nc("Cracked housing")
    capa.ca(capa.assessed_nc("Wrong label"))

    def json_run(*args: str) -> Any:
        argv = ("--json", *args) if where == "before" else (*args, "--json")
        outcome = capa.run(*argv)
        assert outcome.code == 0, outcome.stderr
        assert outcome.stderr == ""
        return outcome.json()

    events = json_run("export", "--format", "jsonl")
    assert isinstance(events, list)
    assert events == plain_events(capa)
    assert any(event["type"] == "CorrectiveAction.Opened" for event in events)

    rows = json_run("export", "--format", "csv")
    assert isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
    assert [row["id"] for row in rows] == [row["id"] for row in plain_rows(capa)]
    assert rows[0]["id"] == first and rows[0]["title"] == "Cracked housing"
    assert rows[-1]["kind"] == "corrective-action"
    assert set(rows[0]) == set(plain_rows(capa)[0])


def test_export_json_with_out_describes_the_file(capa: Capa) -> None:
    capa.nc()
    capa.nc("Wrong label")
    events_file = capa.folder / "events.jsonl"
    outcome = capa.run("export", "--format", "jsonl", "--out", str(events_file), "--json")
    assert (outcome.code, outcome.stderr) == (0, "")
    result = outcome.json()
    lines = events_file.read_text(encoding="utf-8").splitlines()
    assert result == {"format": "jsonl", "out": str(events_file),
                      "bytes": events_file.stat().st_size, "events": len(lines)}
    assert [json.loads(line) for line in lines] == plain_events(capa)

    rows_file = capa.folder / "records.csv"
    outcome = capa.run("--json", "export", "--format", "csv", "--out", str(rows_file))
    assert (outcome.code, outcome.stderr) == (0, "")
    assert outcome.json() == {"format": "csv", "out": str(rows_file),
                              "bytes": rows_file.stat().st_size, "rows": 2}
    assert rows_file.read_text(encoding="utf-8").startswith("id,kind,status,title")


def test_export_without_json_is_unchanged(capa: Capa) -> None:
    capa.nc()
    out = capa.folder / "events.jsonl"
    outcome = capa.run("export", "--format", "jsonl", "--out", str(out))
    assert (outcome.code, outcome.stdout) == (0, "")
    assert outcome.stderr == f"written {out}\n"
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(plain_events(capa))


def test_export_json_in_a_real_process(capa: Capa) -> None:
    capa.nc()
    outcome = capa.process("export", "--format", "csv", "--json")
    assert (outcome.code, outcome.stderr) == (0, "")
    rows = json.loads(outcome.stdout)
    assert [row["kind"] for row in rows] == ["nonconformity"]
    out = capa.folder / "events.jsonl"
    outcome = capa.process("--json", "export", "--format", "jsonl", "--out", str(out))
    assert (outcome.code, outcome.stderr) == (0, "")
    assert json.loads(outcome.stdout)["events"] == len(out.read_text().splitlines())


def test_every_command_accepts_json_after_it() -> None:
    def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[
            tuple[tuple[str, ...], click.Command]]:
        ctx = click.Context(group, info_name="capa")
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                yield from leaves(command, (*prefix, name))
            else:
                yield (*prefix, name), command

    lacking = [" ".join(path) for path, command in leaves(cli)
               if not any("--json" in param.opts for param in command.params)]
    assert lacking == []
