from worker.store.migrations import discover


def test_migrations_are_numbered_and_unique():
    found = discover()
    assert found, "no migrations found in sql/"
    assert [m.version for m in found] == sorted({m.version for m in found})
    assert found[0].version == 1
