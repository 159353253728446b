"""The usage journal: every usage event on local disk before its answer ends, until the store has it.

Usage events and their charges are written to the store in batches, off the hot path
(metering.py). A core killed (SIGKILL, OOM) between an answer and the next batch would lose
those charges. So each event is also appended to a local file, one JSON line (metadata only,
never content), with one write(2) before the answer's last byte goes out; the file is dropped
once the store has committed its batch. A core that starts replays the files of cores that
died on this folder and writes what the store lacks: each event once, found by its request id.

Segments. The writer starts a new segment each time it seals a batch (metering.py), so a
segment holds exactly one batch's events and is deleted when that batch commits. A file lock
(flock) held for the life of the process tells a live core's segments from a dead one's.

What is lost, and what is not:
- a process killed at any point: nothing; the kernel holds what write(2) was given;
- a machine that crashes or loses power: what the kernel had not put on disk yet. Segments
  are fsync'ed when sealed, so that is at most one flush interval of events (usage_flush_interval,
  0.5 s by default); `journal_fsync = "always"` syncs each event instead, at a cost
  (bench/README.md).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SEGMENT = re.compile(r"^(?P<holder>.+)\.(?P<n>\d+)\.jsonl$")


def _sync_and_close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def folder_for(root: str | os.PathLike, database_url: str) -> pathlib.Path:
    """The journal folder of one store under `root`: a core replays only journals of cores that
    wrote to the same store (named by a hash of its URL without the password)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url).set(password=None).render_as_string(hide_password=True)
    return pathlib.Path(root) / hashlib.sha256(url.encode()).hexdigest()[:16]


def _encode(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


# One encoder for every line (json.dumps with arguments builds a new one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":"), default=_encode, check_circular=False).encode


class Journal:
    """This core's journal: appends events, seals segments, drops what the store has."""

    def __init__(self, folder: str | os.PathLike, holder: str, fsync_each: bool = False) -> None:
        self.folder = pathlib.Path(folder)
        self.name = _SAFE.sub("_", holder)
        self._fsync_each = fsync_each
        self._segment = 0
        self._fd = -1
        self._lock_fd = -1
        self._unsynced: list[int] = []  # sealed segments' files, not yet fsync'ed and closed
        self.bytes = 0  # bytes in segments not yet dropped

    def open(self) -> None:
        """Create the folder (this user only), take this core's lock, open the first segment."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(self.folder / f"{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._open_segment()

    def append(self, event: dict) -> None:
        """One event, as one line, with one write(2): in the kernel before this returns."""
        line = _ENCODE(event).encode() + b"\n"
        os.write(self._fd, line)
        self.bytes += len(line)
        if self._fsync_each:
            os.fsync(self._fd)

    def seal(self) -> int:
        """Start the next segment; the sealed one's number. Its file is put on disk by `sync`,
        off the event loop (an fsync can take milliseconds on a busy disk)."""
        sealed = self._segment
        self._unsynced.append(self._fd)
        self._segment += 1
        self._open_segment()
        return sealed

    async def sync(self) -> None:
        """fsync and close the sealed segments' files, in a thread."""
        fds, self._unsynced = self._unsynced, []
        if fds:
            await asyncio.to_thread(_sync_and_close, fds)

    def drop(self, segment: int) -> None:
        """The store committed this segment's batch: its file goes."""
        path = self._path(segment)
        try:
            self.bytes -= path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            pass

    def close(self, keep: bool) -> None:
        """At shutdown: with nothing left unwritten (`keep` False) every file goes; else the
        segments stay for the next start to replay."""
        _sync_and_close(self._unsynced)
        self._unsynced = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if not keep:
                self._path(self._segment).unlink(missing_ok=True)
        if self._lock_fd >= 0:
            if not keep:
                (self.folder / f"{self.name}.lock").unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = -1
        if not keep:
            try:
                self.folder.rmdir()  # the store's folder, once no core's files are left in it
            except OSError:
                pass

    def _path(self, segment: int) -> pathlib.Path:
        return self.folder / f"{self.name}.{segment}.jsonl"

    def _open_segment(self) -> None:
        self._fd = os.open(self._path(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


@dataclass
class Orphan:
    """The journal of a core that is gone, locked by this process while it is replayed."""

    folder: pathlib.Path
    name: str
    segments: list[pathlib.Path]
    lock_fd: int

    def replayed(self) -> None:
        """Its events are in the store: its files and lock go."""
        for path in self.segments:
            path.unlink(missing_ok=True)
        (self.folder / f"{self.name}.lock").unlink(missing_ok=True)
        self.leave()

    def leave(self) -> None:
        """Not replayed now (the store failed): kept for a later try."""
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def orphans(folder: str | os.PathLike) -> list[Orphan]:
    """Journals of cores that are gone (their lock is free), each locked by this process until
    replayed or left, so two cores starting at once never replay the same files."""
    root = pathlib.Path(folder)
    if not root.is_dir():
        return []
    found: dict[str, list[tuple[int, pathlib.Path]]] = {}
    for path in root.iterdir():
        match = _SEGMENT.match(path.name)
        if match:
            found.setdefault(match["holder"], []).append((int(match["n"]), path))
    dead: list[Orphan] = []
    for name, segments in sorted(found.items()):
        fd = os.open(root / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live core's journal
            os.close(fd)
            continue
        dead.append(Orphan(root, name, [p for _, p in sorted(segments)], fd))
    return dead


def read_events(path: pathlib.Path) -> list[dict]:
    """The events of a segment; a last line cut by the crash is skipped (its write never ended,
    so its answer never did either)."""
    events = []
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith(b"\n"):
                logger.warning("journal %s: an unfinished last line skipped", path.name)
                break
            try:
                event = json.loads(line)
            except ValueError:
                logger.error("journal %s: line %d unreadable, skipped", path.name, number)
                continue
            event["time"] = dt.datetime.fromisoformat(event["time"])
            events.append(event)
    return events
