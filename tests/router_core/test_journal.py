"""The usage journal and the writer's exactly-once rules, against a real store (SQLite and
PostgreSQL): a killed core's unwritten events are written by the next core, each once; a batch
retried after a commit whose answer was lost is not written twice; a journal holds metadata only."""
from __future__ import annotations

import json
import pathlib
import stat
import subprocess
import sys
import textwrap
import time


from sqlalchemy import select

from router_core import tables
from router_core.credits import Credits
from router_core.db import create_engine, session_factory
from router_core.journal import Journal, folder_for, orphans, read_events
from router_core.metering import UsageRecorder, replay_orphans
from tests.router_core.test_metering import db, event  # noqa: F401 (db: the store fixture)


async def _events(sessions) -> dict[str, int]:
    async with sessions() as session:
        rows = (await session.execute(select(tables.UsageEvent.request_id, tables.UsageEvent.charged_micro_usd))).all()
    return {r[0]: r[1] for r in rows}


async def _balance(sessions, project_id: str) -> int:
    async with sessions() as session:
        return (await session.get(tables.Project, project_id)).balance_micro_usd


def test_segments_are_private_sealed_and_dropped(tmp_path):
    journal = Journal(tmp_path / "j", "host:1:abc")
    journal.open()
    journal.append(event("req_a", "p", 5))
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o700
    segment = journal.seal()
    files = sorted(p.name for p in (tmp_path / "j").glob("*.jsonl"))
    assert files == ["host_1_abc.0.jsonl", "host_1_abc.1.jsonl"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in (tmp_path / "j").iterdir())
    assert [e["request_id"] for e in read_events(tmp_path / "j" / files[0])] == ["req_a"]
    assert orphans(tmp_path / "j") == [], "a live core's journal is locked, never replayed"
    journal.drop(segment)
    journal.close(keep=False)
    assert not (tmp_path / "j").exists(), "an empty folder is not left behind"


def test_a_line_cut_by_the_crash_is_skipped(tmp_path):
    journal = Journal(tmp_path, "h")
    journal.open()
    journal.append(event("req_whole", "p"))
    journal.close(keep=True)
    with open(tmp_path / "h.0.jsonl", "ab") as f:
        f.write(b'{"request_id":"req_cut","ti')
    assert [e["request_id"] for e in read_events(tmp_path / "h.0.jsonl")] == ["req_whole"]


def test_each_store_has_its_own_folder_and_the_password_does_not_name_it(tmp_path):
    a = folder_for(tmp_path, "postgresql://u:one@db/onekey")
    assert a == folder_for(tmp_path, "postgresql://u:two@db/onekey")
    assert a != folder_for(tmp_path, "postgresql://u:one@db/other")
    assert "one" not in a.name


async def test_a_killed_cores_events_are_written_once_by_the_next_core(db, database_url, tmp_path):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    folder = folder_for(tmp_path, database_url)
    # A core that writes one batch, journals two more events, and is killed before writing them.
    script = textwrap.dedent(f"""
        import asyncio, os
        from router_core.db import create_engine, session_factory
        from router_core.journal import Journal
        from router_core.metering import UsageRecorder
        from tests.router_core.test_metering import db, event  # noqa: F401 (db: the store fixture)

        async def main():
            engine = create_engine({database_url!r})
            journal = Journal({str(folder)!r}, "doomed")
            journal.open()
            recorder = UsageRecorder(session_factory(engine), journal=journal, interval=60)
            recorder.record(event("req_written", {project.id!r}, 100))
            assert await recorder.flush()
            recorder.record(event("req_unwritten1", {project.id!r}, 200))
            recorder.record(event("req_unwritten2", {project.id!r}, 300))
            os.kill(os.getpid(), 9)

        asyncio.run(main())
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=pathlib.Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    assert await _events(sessions) == {"req_written": 100}

    assert await replay_orphans(sessions, folder) == 2
    assert await _events(sessions) == {"req_written": 100, "req_unwritten1": 200, "req_unwritten2": 300}
    # Only the replayed charges come off the balance (the written one was charged through its lease,
    # which this test never took: the balance moved by the replay alone).
    assert await _balance(sessions, project.id) == 1_000_000 - 500
    assert list(folder.iterdir()) == [], "a replayed journal is gone"
    assert await replay_orphans(sessions, folder) == 0


async def test_an_event_already_written_is_not_written_again_on_replay(db, database_url, tmp_path):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    journal = Journal(tmp_path, "h")
    journal.open()
    recorder = UsageRecorder(sessions, journal=journal, interval=60)
    recorder.record(event("req_1", project.id, 100))
    assert await recorder.flush()
    # Killed after the commit, before its segment was dropped: the segment is there again.
    (tmp_path / "h.0.jsonl").write_text((tmp_path / "h.1.jsonl").read_text())
    journal.append(event("req_1", project.id, 100))
    journal.close(keep=True)
    assert await replay_orphans(sessions, tmp_path) == 0
    assert await _events(sessions) == {"req_1": 100}
    assert await _balance(sessions, project.id) == 1_000_000


async def test_a_batch_retried_after_its_commit_went_through_is_not_written_twice(db):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    credits = Credits(sessions, "r1")
    reservation = await credits.reserve(project.id, 1_000)
    recorder = UsageRecorder(sessions, credits=credits, interval=60)
    recorder.record(event("req_1", project.id, credits.settle(reservation, 700)))
    recorder._seal()
    batch = recorder._sealed[0]
    assert await recorder.flush()
    # The connection was cut after COMMIT reached the store but before its answer came back:
    # the writer saw an error, and tries the same batch again.
    batch.tried = True
    recorder._sealed.append(batch)
    recorder._sealed_events += len(batch.events)
    assert await recorder.flush()
    assert await _events(sessions) == {"req_1": 700}
    assert await _balance(sessions, project.id) == 1_000_000 - 700
    assert recorder.pending == 0


async def test_a_journal_holds_metadata_never_content(tmp_path):
    journal = Journal(tmp_path, "h")
    journal.open()
    journal.append(event("req_1", "p", 1))
    journal.close(keep=True)
    text = (tmp_path / "h.0.jsonl").read_text()
    assert set(json.loads(text)) == set(event("x", "p")), "the usage event's fields, nothing else"
    assert "content" not in text and "messages" not in text


async def test_a_stop_while_the_store_is_down_keeps_the_journal_and_does_not_hang(tmp_path):
    engine = create_engine("postgresql://127.0.0.1:1/none")  # nothing listens: refused at once
    journal = Journal(tmp_path / "j", "h")
    journal.open()
    recorder = UsageRecorder(session_factory(engine), journal=journal, interval=60)
    recorder.record(event("req_kept", "p", 5))
    started = time.monotonic()
    await recorder.stop()
    assert time.monotonic() - started < 10
    assert [e["request_id"] for p in sorted((tmp_path / "j").glob("*.jsonl")) for e in read_events(p)] == ["req_kept"]
    found = orphans(tmp_path / "j")
    assert [o.name for o in found] == ["h"], "left for the next core to replay"
    for orphan in found:
        orphan.leave()
    await engine.dispose()
