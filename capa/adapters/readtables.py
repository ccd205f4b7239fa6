"""The SQL of the read tables: their schema, the tracked position, the rows written for the
records a batch of events touched, and the queries the read side answers.

The same statements run on SQLite and PostgreSQL (`?` placeholders, rewritten by
capa.adapters.sql; `TEXT`/`INTEGER`/`BIGINT` only; correlated sub-queries, no upsert dialects:
rows are replaced by delete + insert). What the rows hold is the projection's business
(capa.readmodels.projection); this module only stores and reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from capa.adapters.sql import Cursor, Sql

__all__ = ["CA_COLUMNS", "COLUMNS", "FRESH_COLUMNS", "INDEXES", "ITEM_COLUMNS", "LINK_COLUMNS",
           "NC_COLUMNS", "READ_TABLES", "SCHEMA_VERSION", "TABLES", "TRACKING_NAME", "ReadTables"]

#: Bump when a table's shape or meaning changes: the read models are then rebuilt from the log.
#: 2: nc_summary.risk_level, so the dashboard reads no document (SPEC §13 P7).
SCHEMA_VERSION = 2
TRACKING_NAME = "capa-readmodels"

TABLES = {
    "rm_tracking": """CREATE TABLE IF NOT EXISTS rm_tracking (
        name TEXT PRIMARY KEY, position BIGINT NOT NULL, schema_version INTEGER NOT NULL)""",
    "nc_summary": """CREATE TABLE IF NOT EXISTS nc_summary (
        id TEXT PRIMARY KEY, sort_key BIGINT NOT NULL, status TEXT NOT NULL,
        severity TEXT NOT NULL, source TEXT NOT NULL, product TEXT, lot TEXT,
        title TEXT NOT NULL, external_ref TEXT, detected_on TEXT NOT NULL,
        raised_at TEXT NOT NULL, closed_at TEXT, cause_category TEXT, risk_level TEXT,
        linked_cas TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL)""",
    "ca_summary": """CREATE TABLE IF NOT EXISTS ca_summary (
        id TEXT PRIMARY KEY, sort_key BIGINT NOT NULL, status TEXT NOT NULL,
        owner TEXT NOT NULL, title TEXT NOT NULL, iteration INTEGER NOT NULL,
        opened_at TEXT NOT NULL, closed_at TEXT, first_time_effective INTEGER,
        cause_category TEXT, linked_ncs TEXT NOT NULL, version INTEGER NOT NULL,
        doc TEXT NOT NULL)""",
    "action_items": """CREATE TABLE IF NOT EXISTS action_items (
        ca TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, iteration INTEGER NOT NULL,
        type TEXT NOT NULL, text TEXT NOT NULL, assignee TEXT NOT NULL, due TEXT NOT NULL,
        state TEXT NOT NULL, completed_at TEXT, PRIMARY KEY (ca, number))""",
    "nc_ca_links": """CREATE TABLE IF NOT EXISTS nc_ca_links (
        nc TEXT NOT NULL, ca TEXT NOT NULL, PRIMARY KEY (nc, ca))""",
}
INDEXES = (
    "CREATE INDEX IF NOT EXISTS nc_summary_status ON nc_summary (status, sort_key)",
    "CREATE INDEX IF NOT EXISTS nc_summary_sort ON nc_summary (sort_key)",
    "CREATE INDEX IF NOT EXISTS nc_summary_external_ref ON nc_summary (external_ref)",
    "CREATE INDEX IF NOT EXISTS ca_summary_status ON ca_summary (status, sort_key)",
    "CREATE INDEX IF NOT EXISTS action_items_open ON action_items (state, due)",
    "CREATE INDEX IF NOT EXISTS nc_ca_links_ca ON nc_ca_links (ca)",
)
READ_TABLES = ("nc_summary", "ca_summary", "action_items", "nc_ca_links")

NC_COLUMNS = ("id", "sort_key", "status", "severity", "source", "product", "lot", "title",
              "external_ref", "detected_on", "raised_at", "closed_at", "cause_category",
              "risk_level", "linked_cas", "version", "doc")
CA_COLUMNS = ("id", "sort_key", "status", "owner", "title", "iteration", "opened_at",
              "closed_at", "first_time_effective", "cause_category", "linked_ncs", "version",
              "doc")
ITEM_COLUMNS = ("ca", "number", "seq", "iteration", "type", "text", "assignee", "due", "state",
                "completed_at")
LINK_COLUMNS = ("nc", "ca")

#: The columns of a new NC's nc_summary row that vary; the others are constant for every NC
#: raised and not yet changed, and `follow_import` writes them as literals, not parameters.
FRESH_COLUMNS = ("id", "sort_key", "severity", "source", "product", "lot", "title",
                 "external_ref", "detected_on", "raised_at", "doc")
FRESH_INSERT = (f"INSERT INTO nc_summary ({', '.join(FRESH_COLUMNS)}, status, closed_at, "
                "cause_category, risk_level, linked_cas, version) "
                f"VALUES ({', '.join('?' * len(FRESH_COLUMNS))}, 'open', NULL, NULL, NULL, "
                "'[]', 1)")

#: The columns of each read table, in the order of the rows written to it.
COLUMNS = {"nc_summary": NC_COLUMNS, "ca_summary": CA_COLUMNS, "action_items": ITEM_COLUMNS,
           "nc_ca_links": LINK_COLUMNS}


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _filters(alias: str, statuses: Sequence[str] = (), severities: Sequence[str] = (),
             sources: Sequence[str] = ()) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column, values in (("status", statuses), ("severity", severities), ("source", sources)):
        if values:
            where.append(f"{alias}.{column} IN ({_marks(values)})")
            params.extend(values)
    return where, params


class ReadTables:
    """The read tables of one store, in the database of its event log (capa.adapters.sql)."""

    def __init__(self, recorder: Any) -> None:
        self.sql = Sql(recorder)

    # -- schema and position -----------------------------------------------------------------

    def schema_version(self) -> int | None:
        """The schema the tables were made with; None when the store has none yet."""
        try:
            rows = self.sql.query("SELECT schema_version FROM rm_tracking WHERE name = ?",
                                  (TRACKING_NAME,))
        except Exception:  # noqa: BLE001 - first use on this store: the tables do not exist
            return None
        return int(rows[0]["schema_version"]) if rows else None

    def create(self, *, drop: bool) -> None:
        """Make the tables (dropping the read tables first when `drop`), at position 0."""
        with self.sql.transaction(commit=True) as c:
            if drop:
                for table in READ_TABLES:
                    c.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in (*TABLES.values(), *INDEXES):
                c.execute(statement)
            c.execute("DELETE FROM rm_tracking WHERE name = ?", (TRACKING_NAME,))
            c.execute("INSERT INTO rm_tracking (name, position, schema_version) VALUES (?, 0, ?)",
                      (TRACKING_NAME, SCHEMA_VERSION))

    def position(self) -> int:
        rows = self.sql.query("SELECT position FROM rm_tracking WHERE name = ?", (TRACKING_NAME,))
        return int(rows[0]["position"])

    def remove_snapshots(self) -> int:
        """Delete the snapshot rows earlier releases wrote (capa reads none: SPEC §9.1); return
        how many there were. The table itself is eventsourcing's and stays."""
        table = "capa_snapshots" if self.sql.postgres else "stored_snapshots"
        exists = ("SELECT to_regclass(?) IS NOT NULL AS found" if self.sql.postgres else
                  "SELECT COUNT(*) > 0 AS found FROM sqlite_master WHERE type = 'table' "
                  "AND name = ?")
        name = f"public.{table}" if self.sql.postgres else table
        if not self.sql.query(exists, (name,))[0]["found"]:
            return 0
        with self.sql.transaction(commit=True) as c:
            return c.execute(f"DELETE FROM {table}")  # noqa: S608 - a fixed name

    # -- writing -----------------------------------------------------------------------------

    def write(self, *, expected: int, new: int, nc_rows: Sequence[tuple[Any, ...]],
              cas: Sequence[str], ca_rows: Sequence[tuple[Any, ...]],
              item_rows: Sequence[tuple[Any, ...]], link_rows: Sequence[tuple[str, str]],
              touched: Iterable[str]) -> bool:
        """In one transaction, move the tracked position from `expected` to `new` and replace
        the rows of the NCs given and of the CAs `cas` (their items and links); then set the
        cause category of the NCs `touched` from their latest CA. False, with nothing written,
        when another process moved the position first."""
        with self.sql.transaction(commit=True) as c:
            # Claiming the position first takes the write lock, so two followers never both
            # apply the same batch; the loser rolls back and starts again from the new position.
            moved = c.execute("UPDATE rm_tracking SET position = ? WHERE name = ? AND position = ?",
                              (new, TRACKING_NAME, expected))
            if moved != 1:
                return False
            keys = [(ref,) for ref in cas]
            _replace(c, "nc_summary", NC_COLUMNS, "id", [(row[0],) for row in nc_rows],
                     list(nc_rows))
            _replace(c, "ca_summary", CA_COLUMNS, "id", keys, list(ca_rows))
            _replace(c, "action_items", ITEM_COLUMNS, "ca", keys, list(item_rows))
            _replace(c, "nc_ca_links", LINK_COLUMNS, "ca", keys, list(link_rows))
            # An NC's cause category is its latest CA's.
            c.executemany(
                "UPDATE nc_summary SET cause_category = (SELECT ca.cause_category FROM "
                "nc_ca_links l JOIN ca_summary ca ON ca.id = l.ca WHERE l.nc = nc_summary.id "
                "AND ca.cause_category IS NOT NULL ORDER BY ca.sort_key DESC LIMIT 1) "
                "WHERE id = ?", [(ref,) for ref in sorted(touched)])
        return True

    @staticmethod
    def follow_import(cursor: Any, events_table: str, count: int,
                      rows: Callable[[], Sequence[tuple[Any, ...]]]) -> bool:
        """On the cursor of a bulk insert's transaction (SQLite), write the nc_summary rows
        (`FRESH_COLUMNS`) of the `count` events it inserted and move the tracked position past
        them, only when those events are all the log holds past the position. Whether it
        wrote them."""
        cursor.execute("SELECT position FROM rm_tracking WHERE name = ?", (TRACKING_NAME,))
        tracked = cursor.fetchone()
        if tracked is None:
            return False
        position = int(tracked[0])
        cursor.execute(f"SELECT COUNT(*), MAX(rowid) FROM {events_table} "  # noqa: S608
                       "WHERE rowid > ?", (position,))
        after = cursor.fetchone()
        summary = rows() if int(after[0]) == count else []
        if len(summary) != count:
            return False
        cursor.executemany(FRESH_INSERT, summary)
        cursor.execute("UPDATE rm_tracking SET position = ? WHERE name = ? AND position = ?",
                       (int(after[1]), TRACKING_NAME, position))
        return True

    # -- queries -----------------------------------------------------------------------------

    def nc_docs(self, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                sources: Sequence[str] = (), overdue_on: str | None = None) -> list[str]:
        """The documents of the NCs that pass the filters, in reference order."""
        where, params = _filters("n", statuses=statuses, severities=severities, sources=sources)
        if overdue_on is not None:
            where.append(
                "EXISTS (SELECT 1 FROM nc_ca_links l JOIN ca_summary c ON c.id = l.ca "
                "JOIN action_items a ON a.ca = c.id WHERE l.nc = n.id "
                "AND c.status NOT IN ('closed', 'cancelled') AND a.state = 'open' AND a.due < ?)")
            params.append(overdue_on)
        return self._docs("SELECT n.doc FROM nc_summary n", where, params, "n.sort_key")

    def ca_docs(self, *, statuses: Sequence[str] = (), severities: Sequence[str] = (),
                sources: Sequence[str] = (), overdue_on: str | None = None) -> list[str]:
        """The documents of the CAs that pass the filters (an NC's severity and source: those
        of a linked NC), in reference order."""
        where, params = _filters("c", statuses=statuses)
        for column, values in (("severity", severities), ("source", sources)):
            if values:
                where.append("EXISTS (SELECT 1 FROM nc_ca_links l JOIN nc_summary n ON "
                             f"n.id = l.nc WHERE l.ca = c.id AND n.{column} IN "
                             f"({_marks(values)}))")
                params.extend(values)
        if overdue_on is not None:
            where.append("c.status NOT IN ('closed', 'cancelled') AND EXISTS (SELECT 1 FROM "
                         "action_items a WHERE a.ca = c.id AND a.state = 'open' AND a.due < ?)")
            params.append(overdue_on)
        return self._docs("SELECT c.doc FROM ca_summary c", where, params, "c.sort_key")

    def _docs(self, select: str, where: list[str], params: list[Any], order: str) -> list[str]:
        statement = select + (" WHERE " + " AND ".join(where) if where else "")
        return [str(row["doc"]) for row in self.sql.query(f"{statement} ORDER BY {order}",
                                                          params)]

    def overdue(self, today: str) -> list[dict[str, Any]]:
        """Implemented CAs awaiting verification and open items past due, in CA then item order.
        """
        return self.sql.query(
            "SELECT c.id AS ca, c.sort_key, 0 AS seq, 'awaiting-verification' AS kind, "
            "NULL AS action, c.title, c.owner, NULL AS assignee, NULL AS due, c.status "
            "FROM ca_summary c WHERE c.status = 'implemented' "
            "UNION ALL "
            "SELECT c.id, c.sort_key, a.seq, 'action-overdue', a.number, a.text, c.owner, "
            "a.assignee, a.due, c.status FROM action_items a JOIN ca_summary c ON c.id = a.ca "
            "WHERE a.state = 'open' AND a.due < ? AND c.status NOT IN ('closed', 'cancelled') "
            "ORDER BY 2, 3", (today,))

    def planned_check_docs(self) -> list[str]:
        """The documents of the active CAs that hold a planned effectiveness check (SPEC §12),
        in reference order; records without one never carry the key."""
        return self._docs("SELECT c.doc FROM ca_summary c",
                          ["c.status NOT IN ('closed', 'cancelled')", "c.doc LIKE ?"],
                          ['%"checks":%'], "c.sort_key")

    def reminder_candidates(self, due_by: str) -> list[str]:
        """The CAs a reminder may be due for: those awaiting verification, and those not closed
        or cancelled with an open item due on or before `due_by`, in reference order."""
        return [str(row["id"]) for row in self.sql.query(
            "SELECT c.id FROM ca_summary c WHERE c.status = 'implemented' OR "
            "(c.status NOT IN ('closed', 'cancelled') AND EXISTS (SELECT 1 FROM action_items a "
            "WHERE a.ca = c.id AND a.state = 'open' AND a.due <= ?)) ORDER BY c.sort_key",
            (due_by,))]

    def open_ncs_of_product(self, product: str) -> list[dict[str, Any]]:
        """`id`, `status` and `title` of the NCs, neither closed nor cancelled, whose product
        is `product` (surrounding spaces and case aside), in reference order."""
        return self.sql.query(
            "SELECT id, status, title FROM nc_summary WHERE LOWER(TRIM(product)) = LOWER(?) AND "
            "status NOT IN ('closed', 'cancelled') ORDER BY sort_key", (product.strip(),))

    def external_refs(self) -> list[dict[str, Any]]:
        """`id` and `external_ref` of every NC row that holds an external reference."""
        return self.sql.query(
            "SELECT id, external_ref FROM nc_summary WHERE external_ref IS NOT NULL")

    def count(self, name: str) -> int:
        if name not in READ_TABLES:
            raise ValueError(f"not a read table: {name}")
        return int(self.sql.query(f"SELECT COUNT(*) AS n FROM {name}")[0]["n"])  # noqa: S608

    def table(self, name: str, order: str = "") -> list[dict[str, Any]]:
        """Every row of one read table, without the documents."""
        columns = {"nc_summary": NC_COLUMNS[:-1], "ca_summary": CA_COLUMNS[:-1],
                   "action_items": ITEM_COLUMNS, "nc_ca_links": LINK_COLUMNS}[name]
        suffix = f" ORDER BY {order}" if order else ""
        return self.sql.query(f"SELECT {', '.join(columns)} FROM {name}{suffix}")  # noqa: S608


def _replace(c: Cursor, table: str, columns: Sequence[str], key: str,
             keys: list[tuple[str]], rows: list[tuple[Any, ...]]) -> None:
    c.executemany(f"DELETE FROM {table} WHERE {key} = ?", keys)  # noqa: S608
    c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                  f"VALUES ({_marks(columns)})", rows)
