"""What `manage.py runtime` takes over from journals no host of it writes any more."""

from workers_portal.management.commands.runtime import adopt_journals


def test_an_orphaned_journal_moves_what_it_had_not_sent_to_a_living_hosts(settings, tmp_path):
    settings.RUNTIME_JOURNAL_DIR = str(tmp_path)
    own = tmp_path / "host-8787-0.ndjson"
    own.write_text('I{"requestId":"mine"}\n')
    sent_in_part = tmp_path / "host-9000-0.ndjson"
    sent_in_part.write_text('I{"requestId":"sent"}\nL{"requestId":"not yet"}\n')
    (tmp_path / "host-9000-0.ndjson.shipped").write_text(str(len('I{"requestId":"sent"}\n')))
    # Cut shorter than its mark says: a host killed while it compacted its journal.
    compacted = tmp_path / "host-9000-1.ndjson"
    compacted.write_text('I{"requestId":"rest"}\n')
    (tmp_path / "host-9000-1.ndjson.shipped").write_text("4194304")
    assert adopt_journals([str(own)]) == 2
    assert own.read_text().splitlines() == [
        'I{"requestId":"mine"}', 'L{"requestId":"not yet"}', 'I{"requestId":"rest"}'
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host-8787-0.ndjson"]
