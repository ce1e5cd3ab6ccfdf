"""SQLite storage of the embedded sidecar: schema, version check and row operations.

One connection is used for everything and the caller serializes access with the
sidecar's lock. Times are integers, microseconds since the Unix epoch in UTC.
History events, inbox events and activity requests are stored as serialized
protobuf so that they round-trip byte for byte.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["SCHEMA_VERSION", "SchemaVersionError", "InstanceRow", "Store"]

logger = logging.getLogger("durable.sidecar.store")

SCHEMA_VERSION = 1
_APPLICATION = "durable-sidecar"

_SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    status INTEGER NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    failure_details BLOB,
    tags TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    completed_at INTEGER,
    scheduled_start_at INTEGER,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    next_history_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_by_created ON instances (created_at, instance_id);
CREATE INDEX instances_by_completed ON instances (completed_at, instance_id)
    WHERE completed_at IS NOT NULL;
CREATE INDEX instances_by_parent ON instances (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;
CREATE TABLE history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    event BLOB NOT NULL
);
CREATE INDEX inbox_by_instance ON inbox (instance_id, visible_at);
CREATE TABLE activities (
    seq INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    version TEXT,
    request BLOB NOT NULL
);
CREATE INDEX activities_by_instance ON activities (instance_id);
"""


class SchemaVersionError(RuntimeError):
    """The database file was not created by this version of the sidecar."""


@dataclasses.dataclass(slots=True)
class InstanceRow:
    """One orchestration instance as stored in the `instances` table."""

    instance_id: str
    execution_id: str
    name: str
    version: str | None
    status: int
    input: str | None
    output: str | None
    custom_status: str | None
    failure_details: bytes | None
    tags: dict[str, str]
    created_at: int
    updated_at: int
    completed_at: int | None
    scheduled_start_at: int | None
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    next_history_seq: int = 0


_COLUMNS = [f.name for f in dataclasses.fields(InstanceRow)]
_INFO_COLUMNS = frozenset({"status", "name", "version", "execution_id"})
# COMPLETED, FAILED and TERMINATED, as `OrchestrationStatus` numbers.
_TERMINAL = frozenset({1, 3, 5})
_SELECT_INSTANCE = f"SELECT {', '.join(_COLUMNS)} FROM instances"


def _row_to_instance(row: Sequence[object]) -> InstanceRow:
    values = list(row)
    tags_index = _COLUMNS.index("tags")
    values[tags_index] = json.loads(values[tags_index]) if values[tags_index] else {}  # type: ignore[arg-type]
    return InstanceRow(*values)  # type: ignore[arg-type]


class Store:
    """SQLite database of one sidecar. Not thread-safe: the caller holds the sidecar lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            self._configure()
            self._check_schema()
        except BaseException:
            self._db.close()
            raise
        # Sequence numbers are assigned here rather than by AUTOINCREMENT, which
        # would write its counter table on every insert. They only grow, so a
        # number is never reused while an in-memory lease may still refer to it.
        self._next_inbox_seq = self._max_seq("inbox") + 1
        self._next_activity_seq = self._max_seq("activities") + 1
        # (status, name, version, execution id) of non-terminal instances, read on
        # every dispatch and completion. Writes below keep it current.
        self._info: dict[str, tuple[int, str, str | None, str]] = {}
        self._group_open = False
        self._group = 0
        self._committed_group = 0

    def _max_seq(self, table: str) -> int:
        row = self._db.execute(f"SELECT MAX(seq) FROM {table}").fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _configure(self) -> None:
        if self.path != ":memory:":
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("SQLite could not switch %s to WAL mode and uses journal mode %s", self.path, mode)
        # NOTE: NORMAL is durable across process crashes in WAL mode, and an OS
        # crash can lose only the last commits; FULL would fsync every commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._db.execute("PRAGMA busy_timeout=5000")

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("application", _APPLICATION), ("schema_version", str(SCHEMA_VERSION))],
                )
            return
        if "meta" not in tables:
            raise SchemaVersionError(
                f"database {self.path!r} is not a durable sidecar database (it has no 'meta' table); "
                "use a new file or the path of a database that a durable sidecar created"
            )
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != _APPLICATION:
            raise SchemaVersionError(
                f"database {self.path!r} was not created by a durable sidecar "
                f"(application {meta.get('application')!r}); use a new database file"
            )
        found = meta.get("schema_version")
        if found != str(SCHEMA_VERSION):
            raise SchemaVersionError(
                f"database {self.path!r} has schema version {found}, but this version of durable "
                f"needs schema version {SCHEMA_VERSION}; open it with the durable version that "
                "created it, or start the sidecar on a new database file"
            )

    def close(self) -> None:
        """Commit the open group, then close the connection, checkpointing the write-ahead log."""
        self.commit_group()
        self._db.close()

    # ------------------------------------------------------------------ group commit

    @property
    def committed_group(self) -> int:
        """Number of the last group transaction that was committed."""
        return self._committed_group

    def run_in_group(self, change: Callable[[], None]) -> int:
        """Run `change` atomically inside the open group transaction; return the group's number.

        A failing change is rolled back to its savepoint and leaves the group
        intact. Nothing is durable until `commit_group()`.
        """
        if not self._group_open:
            self._db.execute("BEGIN IMMEDIATE")
            self._group_open = True
            self._group += 1
        self._db.execute("SAVEPOINT change")
        try:
            change()
        except BaseException:
            self._db.execute("ROLLBACK TO change")
            self._db.execute("RELEASE change")
            self._info.clear()
            raise
        self._db.execute("RELEASE change")
        return self._group

    def commit_group(self) -> None:
        """Commit the open group transaction, if any; on failure roll all of it back and raise."""
        if not self._group_open:
            return
        self._group_open = False
        try:
            self._db.execute("COMMIT")
        except BaseException:
            self._info.clear()
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._committed_group = self._group

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one write transaction: all of it is committed or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            self._info.clear()
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ instances

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        row = self._db.execute(_SELECT_INSTANCE + " WHERE instance_id = ?", (instance_id,)).fetchone()
        return None if row is None else _row_to_instance(row)

    def insert_instance(self, row: InstanceRow) -> None:
        # A flat tuple: dataclasses.astuple would deep-copy every field.
        values = tuple(getattr(row, column) for column in _COLUMNS)
        values = tuple(json.dumps(v, sort_keys=True) if k == "tags" else v for k, v in zip(_COLUMNS, values))
        # A row with no tags stores NULL.
        tags_index = _COLUMNS.index("tags")
        if not row.tags:
            values = values[:tags_index] + (None,) + values[tags_index + 1 :]
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._db.execute(f"INSERT INTO instances ({', '.join(_COLUMNS)}) VALUES ({placeholders})", values)
        self._info.pop(row.instance_id, None)

    def update_instance(self, instance_id: str, **columns: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self._db.execute(
            f"UPDATE instances SET {assignments} WHERE instance_id = ?", (*columns.values(), instance_id)
        )
        cached = self._info.get(instance_id)
        if cached is not None and _INFO_COLUMNS.intersection(columns):
            status, name, version, execution_id = cached
            status = int(columns.get("status", status))  # type: ignore[call-overload]
            if status in _TERMINAL:
                del self._info[instance_id]
            else:
                new_version = columns.get("version", version)
                self._info[instance_id] = (
                    status,
                    str(columns.get("name", name)),
                    None if new_version is None else str(new_version),
                    str(columns.get("execution_id", execution_id)),
                )

    def delete_instance(self, instance_id: str) -> None:
        """Delete an instance with its history, inbox and queued activities."""
        for table in ("instances", "history", "inbox", "activities"):
            self._db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
        self._info.pop(instance_id, None)

    def child_ids(self, instance_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT instance_id FROM instances WHERE parent_instance_id = ? ORDER BY created_at, instance_id",
            (instance_id,),
        )
        return [row[0] for row in rows]

    def instance_ids_with_inbox(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT DISTINCT instance_id FROM inbox")]

    # ------------------------------------------------------------------ history

    def history(self, instance_id: str) -> list[bytes]:
        rows = self._db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [row[0] for row in rows]

    def history_from(self, instance_id: str, first_seq: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? AND seq >= ? ORDER BY seq", (instance_id, first_seq)
        )
        return [row[0] for row in rows]

    def next_history_seq(self, instance_id: str) -> int:
        row = self._db.execute("SELECT next_history_seq FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def append_history(self, instance_id: str, first_seq: int, events: Iterable[bytes]) -> int:
        """Append events from sequence number `first_seq` on; return the next free number."""
        rows = [(instance_id, first_seq + i, event) for i, event in enumerate(events)]
        self._db.executemany("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)", rows)
        return first_seq + len(rows)

    def clear_history(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))

    # ------------------------------------------------------------------ inbox

    def add_inbox(self, instance_id: str, kind: int, visible_at: int, event: bytes) -> None:
        seq = self._next_inbox_seq
        self._next_inbox_seq += 1
        self._db.execute(
            "INSERT INTO inbox (seq, instance_id, kind, visible_at, event) VALUES (?, ?, ?, ?, ?)",
            (seq, instance_id, kind, visible_at, event),
        )

    def due_inbox(self, instance_id: str, now: int) -> list[tuple[int, int, bytes]]:
        """Return the (seq, kind, event) rows visible at `now`, in arrival order."""
        rows = self._db.execute(
            "SELECT seq, kind, event FROM inbox WHERE instance_id = ? AND visible_at <= ? ORDER BY seq",
            (instance_id, now),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def take_inbox(self, instance_id: str, exclude: Sequence[int]) -> list[tuple[int, int, bytes]]:
        """Delete and return the (kind, visible_at, event) rows whose seq is not in `exclude`."""
        skip = set(exclude)
        rows = self._db.execute(
            "SELECT seq, kind, visible_at, event FROM inbox WHERE instance_id = ? ORDER BY seq", (instance_id,)
        ).fetchall()
        kept = [(row[1], row[2], row[3]) for row in rows if row[0] not in skip]
        self._db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
        return kept

    def delete_inbox_rows(self, instance_id: str, seqs: Sequence[int]) -> None:
        self._db.executemany(
            "DELETE FROM inbox WHERE seq = ? AND instance_id = ?", [(seq, instance_id) for seq in seqs]
        )

    def clear_inbox(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))

    # ------------------------------------------------------------------ activities

    def add_activity(
        self, instance_id: str, execution_id: str, task_id: int, name: str, version: str | None, request: bytes
    ) -> int:
        seq = self._next_activity_seq
        self._next_activity_seq += 1
        self._db.execute(
            "INSERT INTO activities (seq, instance_id, execution_id, task_id, name, version, request) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, instance_id, execution_id, task_id, name, version, request),
        )
        return seq

    def delete_activity(self, seq: int) -> None:
        self._db.execute("DELETE FROM activities WHERE seq = ?", (seq,))

    def delete_activities(self, instance_id: str) -> None:
        self._db.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))

    def all_activities(self) -> list[tuple[int, str, str, int, str, str | None, bytes]]:
        """Return (seq, instance id, execution id, task id, name, version, request) of queued activities."""
        rows = self._db.execute(
            "SELECT seq, instance_id, execution_id, task_id, name, version, request FROM activities ORDER BY seq"
        )
        return [(row[0], row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows]

    # ------------------------------------------------------------------ listing

    def query_instances(
        self,
        statuses: Sequence[int],
        created_from: int | None,
        created_to: int | None,
        prefix: str | None,
        after: tuple[int, str] | None,
        limit: int | None,
    ) -> list[InstanceRow]:
        """Return instances ordered by (created time, id), after the keyset cursor `after`."""
        where: list[str] = []
        args: list[object] = []
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        if created_from is not None:
            where.append("created_at >= ?")
            args.append(created_from)
        if created_to is not None:
            where.append("created_at < ?")
            args.append(created_to)
        if prefix:
            where.append("substr(instance_id, 1, ?) = ?")
            args.extend([len(prefix), prefix])
        if after is not None:
            where.append("(created_at > ? OR (created_at = ? AND instance_id > ?))")
            args.extend([after[0], after[0], after[1]])
        sql = _SELECT_INSTANCE
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, instance_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_row_to_instance(row) for row in self._db.execute(sql, args)]

    def list_terminal_ids(
        self,
        statuses: Sequence[int],
        completed_from: int | None,
        completed_to: int | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[tuple[str, int]]:
        """Return (id, completed time) of terminal instances ordered by (completed time, id)."""
        where = ["completed_at IS NOT NULL", f"status IN ({', '.join('?' for _ in statuses)})"]
        args: list[object] = list(statuses)
        if completed_from is not None:
            where.append("completed_at >= ?")
            args.append(completed_from)
        if completed_to is not None:
            where.append("completed_at < ?")
            args.append(completed_to)
        if after is not None:
            where.append("(completed_at > ? OR (completed_at = ? AND instance_id > ?))")
            args.extend([after[0], after[0], after[1]])
        sql = (
            "SELECT instance_id, completed_at FROM instances WHERE "
            + " AND ".join(where)
            + " ORDER BY completed_at, instance_id LIMIT ?"
        )
        args.append(limit)
        return [(row[0], row[1]) for row in self._db.execute(sql, args)]

    # ------------------------------------------------------------------ dispatch support

    def dispatch_info(self, instance_id: str) -> tuple[int, str, str | None, str] | None:
        """Return (status, name, version, execution id) without reading payload columns."""
        cached = self._info.get(instance_id)
        if cached is not None:
            return cached
        row = self._db.execute(
            "SELECT status, name, version, execution_id FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            return None
        info = (int(row[0]), str(row[1]), row[2], str(row[3]))
        # Only live instances are kept, so the cache is bounded by the work in flight.
        if info[0] not in _TERMINAL:
            self._info[instance_id] = info
        return info

    def has_due_inbox(self, instance_id: str, now: int, kinds: Sequence[int] = ()) -> bool:
        sql = "SELECT 1 FROM inbox WHERE instance_id = ? AND visible_at <= ?"
        args: list[object] = [instance_id, now]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args.extend(kinds)
        return self._db.execute(sql + " LIMIT 1", args).fetchone() is not None

    def next_visible_at(self, instance_id: str, now: int) -> int | None:
        """Return the earliest visibility time after `now` of the instance's inbox rows."""
        row = self._db.execute(
            "SELECT MIN(visible_at) FROM inbox WHERE instance_id = ? AND visible_at > ?", (instance_id, now)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def start_visible_at(self, instance_id: str, kind: int) -> int | None:
        """Return when the instance's queued event of the given kind becomes visible."""
        row = self._db.execute(
            "SELECT MIN(visible_at) FROM inbox WHERE instance_id = ? AND kind = ?", (instance_id, kind)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def inbox_kinds(self, instance_id: str, kinds: Sequence[int]) -> list[int]:
        """Return the kinds of the instance's inbox rows that are among `kinds`, in arrival order."""
        rows = self._db.execute(
            f"SELECT kind FROM inbox WHERE instance_id = ? AND kind IN ({', '.join('?' for _ in kinds)}) "
            "ORDER BY seq",
            (instance_id, *kinds),
        )
        return [row[0] for row in rows]

    def first_history_events(self, instance_id: str, count: int) -> list[bytes]:
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY seq LIMIT ?", (instance_id, count)
        )
        return [row[0] for row in rows]
