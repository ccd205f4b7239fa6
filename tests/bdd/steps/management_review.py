"""Steps of the management review pack (features/reports/management_review.feature): records
over the last six months, the pack prepared from them, and what it reports."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from capa.app.application import CapaApplication
from capa.domain.errors import CapaError, NotPermitted
from capa.reports.dashboard import collect, months_between
from capa.reports.management_review import ManagementReview, collect_review
from tests.support.cast import (
    AUDITOR,
    FULL_NAMES,
    OWNER,
    QUALITY_ENGINEER,
    QUALITY_MANAGER,
    REPORTER,
    VERIFIER,
)
from tests.support.reading import reading
from tests.support.stores import Store


@dataclass
class Pack:
    """The store of a scenario and the packs prepared from it."""

    store: Store
    app: CapaApplication
    refs: list[str] = field(default_factory=list)
    figures: ManagementReview | None = None
    documents: dict[str, str] = field(default_factory=dict)
    refusal: CapaError | None = None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _month_start(back: int) -> dt.date:
    months = _today().year * 12 + _today().month - 1 - back
    return dt.date(months // 12, months % 12 + 1, 1)


def _period() -> tuple[str, str]:
    return _month_start(5).isoformat(), _today().isoformat()


@pytest.fixture
def pack(tmp_path: Path, store_target: str) -> Iterator[Pack]:
    store = Store(store_target)
    yield Pack(store, store.create())
    store.close()


def _raise(pack: Pack, product: str, detected: dt.date, title: str = "Seal weak") -> str:
    with pack.store.acting(pack.app, REPORTER):
        ref = str(pack.app.nonconformities.raise_nc(
            title=title, description="Peel strength below 8 N", source="process",
            severity="minor", product=product, detected_on=detected.isoformat()).id)
    pack.refs.append(ref)
    return ref


def _open_ca(pack: Pack, owner: str, title: str = "Housing cracks",
             ncs: tuple[str, ...] = ()) -> str:
    with pack.store.acting(pack.app, QUALITY_ENGINEER):
        return str(pack.app.corrective_actions.open_ca(title=title, problem="Seen in use",
                                                       owner=owner, ncs=list(ncs)).id)


# -- given ------------------------------------------------------------------------------------


@given("a records store for the management review of the last six months")
def review_store(pack: Pack) -> None:
    assert pack.app is not None


@given(parsers.parse("nonconformities detected over the last six months: {counts} of them"))
def detected_over_six_months(pack: Pack, counts: str) -> None:
    numbers = [int(n) for n in re.findall(r"\d+", counts)]
    assert len(numbers) == 6
    for back, count in zip(range(5, -1, -1), numbers, strict=True):
        for _ in range(count):
            _raise(pack, "IP-200 housing", _month_start(back))


@given(parsers.parse('three nonconformities on "{product}" this month, traced to the cause '
                     'category "{category}"'))
def three_traced(pack: Pack, product: str, category: str) -> None:
    ncs = tuple(_raise(pack, product, _today()) for _ in range(3))
    with pack.store.acting(pack.app, QUALITY_MANAGER):
        for nc in ncs:
            pack.app.nonconformities.assess_nc(nc, impact=3, likelihood=3, capa_required=True)
    ca = _open_ca(pack, OWNER, "Seal strength", ncs)
    with pack.store.acting(pack.app, OWNER):
        pack.app.corrective_actions.investigate_ca(ca, method="other",
                                                   root_cause="Worn sealer jaw",
                                                   category=category)
    pack.refs.append(ca)


@given(parsers.parse('their corrective action, owned by "{owner}", had its action extended by '
                     '{days:d} days and was verified effective'))
def extended_and_effective(pack: Pack, owner: str, days: int) -> None:
    ca, app, store = pack.refs[-1], pack.app, pack.store
    due = _today() + dt.timedelta(days=5)
    with store.acting(app, owner):
        app.corrective_actions.plan_ca(ca, action="Replace the jaw", assignee=owner,
                                       due=due.isoformat(), action_type="corrective")
    with store.acting(app, QUALITY_MANAGER):
        app.corrective_actions.approve_ca(ca)
        app.corrective_actions.extend_action(ca, "A1", reason="Spare part late",
                                             due=(due + dt.timedelta(days=days)).isoformat())
    with store.acting(app, owner):
        app.corrective_actions.complete_action(ca, "A1", note="Jaw replaced")
    with store.acting(app, VERIFIER):
        app.corrective_actions.verify_ca(ca, effective=True, note="No weak seal in 3 lots")


@given(parsers.parse('another corrective action owned by "{owner}" is open'))
def another_open(pack: Pack, owner: str) -> None:
    _open_ca(pack, owner)


@given(parsers.parse('another corrective action owned by "{owner}" titled "{title}" is open'))
def another_open_titled(pack: Pack, owner: str, title: str) -> None:
    _open_ca(pack, owner, title)


# -- when -------------------------------------------------------------------------------------


def _prepare(pack: Pack, user: str, formats: tuple[str, ...] = ("md",)) -> None:
    start, end = _period()
    try:
        with pack.store.acting(pack.app, user):
            for fmt in formats:
                pack.documents[fmt] = pack.app.reviews.management_review(
                    start, end, fmt).decode("utf-8")
    except CapaError as exc:
        pack.refusal = exc
        return
    with reading(pack.app):
        pack.figures = collect_review(pack.app, _month_start(5), _today(), _today())


@when("the quality manager prepares the management review pack of the last six months")
def quality_prepares(pack: Pack) -> None:
    _prepare(pack, QUALITY_MANAGER)


@when("the quality manager prepares the management review pack of the last six months as "
      "Markdown and as HTML")
def quality_prepares_both(pack: Pack) -> None:
    _prepare(pack, QUALITY_MANAGER, ("md", "html"))


@when("the auditor prepares the management review pack of the last six months")
def auditor_prepares(pack: Pack) -> None:
    _prepare(pack, AUDITOR)


@when("the reporter prepares the management review pack of the last six months")
def reporter_prepares(pack: Pack) -> None:
    pack.documents.clear()
    _prepare(pack, REPORTER)


# -- then -------------------------------------------------------------------------------------


def _figures(pack: Pack) -> ManagementReview:
    assert pack.refusal is None, f"the pack was refused: {pack.refusal}"
    assert pack.figures is not None
    return pack.figures


@then(parsers.parse("the pack counts {counts} nonconformities month by month"))
def counts_by_month(pack: Pack, counts: str) -> None:
    figures = _figures(pack)
    expected = [int(n) for n in re.findall(r"\d+", counts)]
    assert figures.months == months_between(_month_start(5), _today())
    assert figures.nc_per_month == expected
    for month, n in zip(figures.months, expected, strict=True):
        assert f"| {month} | {n} |" in pack.documents["md"]


@then(parsers.parse("the pack's control limits are a centre line of {centre}, an upper limit "
                    "of {ucl} and a lower limit of {lcl}"))
def control_limits(pack: Pack, centre: str, ucl: str, lcl: str) -> None:
    limits = _figures(pack).nc_limits
    assert limits is not None
    assert (f"{limits.centre:.2f}", f"{limits.ucl:.2f}", f"{limits.lcl:.2f}") == (centre, ucl,
                                                                                   lcl)
    assert f"centre c̄ = {centre}, UCL = c̄ + 3√c̄ = {ucl}" in pack.documents["md"]


@then("the pack names this month as above the control limits, and no other month")
def this_month_above(pack: Pack) -> None:
    figures = _figures(pack)
    month = _today().isoformat()[:7]
    assert [(m, side) for m, _, side in figures.nc_breaches] == [(month, "above")]
    assert f"1 month(s) outside the limits: {month} (" in pack.documents["md"]


@then("the dashboard's monthly chart draws the same control limits")
def dashboard_same_limits(pack: Pack) -> None:
    start, end = _period()
    with pack.store.acting(pack.app, QUALITY_MANAGER):
        page = pack.app.queries.render_dashboard(start=start, end=end)
    figures = collect(pack.app.read_models, end, start, end)
    assert figures.nc_limits == _figures(pack).nc_limits
    assert figures.nc_limits is not None
    assert f"<title>UCL {figures.nc_limits.ucl:.2f}</title>" in page


@then(parsers.parse('the pack shows {count:d} nonconformities on "{product}" recurring for the '
                    'cause "{cause}"'))
def pack_recurrence(pack: Pack, count: int, product: str, cause: str) -> None:
    figures = _figures(pack)
    assert [(p, c, n) for p, c, n, _ in figures.recurring_causes] == [(product, cause, count)]
    assert f"| {product} | {cause} | {count} |" in pack.documents["md"]


@then(parsers.parse("the pack reports {effective:d} of {checks:d} effectiveness checks as "
                    "effective, a rate of {rate} %"))
def pack_effectiveness(pack: Pack, effective: int, checks: int, rate: str) -> None:
    figures = _figures(pack)
    assert (figures.effective, figures.effective + figures.not_effective) == (effective, checks)
    assert f"effectiveness rate {rate} %" in pack.documents["md"]


@then(parsers.parse("the pack reports {count:d} due-date extension adding {days:d} days"))
def pack_extensions(pack: Pack, count: int, days: int) -> None:
    items = _figures(pack).items
    assert (items["extensions"], items["extension_days"]) == (count, days)


@then(parsers.parse('the pack shows {count:d} open corrective actions of "{name}" aged 30 days '
                    'or less'))
def pack_open(pack: Pack, count: int, name: str) -> None:
    owners = _figures(pack).open_by_owner
    owner = next(user for user, full in FULL_NAMES.items() if full == name)
    assert owners[owner]["0-30 days"] == count == sum(owners[owner].values())
    assert f"| {name} ({owner}) | {count} | 0 | 0 | 0 | {count} |" in pack.documents["md"]


@then("neither pack holds a heading, a table column or a script that the title brought in")
def nothing_injected(pack: Pack) -> None:
    _figures(pack)
    md, page = pack.documents["md"], pack.documents["html"]
    assert not any(line.startswith("## Effectiveness") for line in md.splitlines())
    row = next(line for line in md.splitlines() if "Effectiveness 100" in line)
    assert row.count("|") - row.count("\\|") == 6
    assert "<script>" not in md and "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@then("the pack is prepared")
def prepared(pack: Pack) -> None:
    _figures(pack)
    assert pack.documents["md"].startswith("# Management review ")


@then("the attempt is refused as not permitted")
def refused_not_permitted(pack: Pack) -> None:
    refusal, pack.refusal = pack.refusal, None
    assert isinstance(refusal, NotPermitted), refusal
    assert pack.documents == {}
    assert "may not management-review" in str(refusal)
