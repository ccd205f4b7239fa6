"""The similar-records hint of `nc raise` on a real store (SPEC §12, §7 P1): read from the read
table and the NCs changed since its position, writing nothing; far behind, it looks at the
latest events only. `nc list --similar` is exact either way."""

from __future__ import annotations

from typing import Any

from capa.app.application import CapaApplication
from tests.support.cast import REPORTER
from tests.support.stores import Store


def raise_nc(app: CapaApplication, title: str, product: str | None = "Pouch P-10") -> Any:
    return app.nonconformities.raise_nc(title=title, description="Seen on line 3",
                                         source="process", severity="minor", product=product)


def test_far_behind_the_hint_looks_at_the_latest_events_and_the_list_is_exact(
        store: Store, app: CapaApplication) -> None:
    with store.acting(app, REPORTER):
        app.queries.list_records("nc")  # the read table exists, and is up to date
        tracked = store.rows("SELECT position FROM rm_tracking")
        early = raise_nc(app, "Seal strength low on pouch").id
        for n in range(210):
            raise_nc(app, f"Unrelated finding {n}", product=None)
        late = raise_nc(app, "Seal strength weak on pouch").id
        third = raise_nc(app, "Low seal strength on pouch")
        hint = third.detail["similar"]
        # The duplicate just raised is named; the one 210 events back is beyond the hint.
        assert [s["id"] for s in hint] == [late]
        assert store.rows("SELECT position FROM rm_tracking") == tracked
        newest = app.nonconformities.raise_nc(
            title="Low seal strength on pouch", description="d", source="process",
            severity="minor", product="Pouch P-10").id
        assert [v.id for v in app.queries.similar_ncs(newest)] == [early, late, third.id]
