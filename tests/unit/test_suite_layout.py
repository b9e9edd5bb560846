"""The test suite itself: pytest imports test files by basename (rootdir-relative, no
packages), so a unit and an integration test of the same name break collection of the
whole suite ("import file mismatch")."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_a_basename_of_its_own():
    names: dict[str, list[str]] = {}
    for path in TESTS.rglob("test_*.py"):
        names.setdefault(path.name, []).append(str(path.relative_to(TESTS)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}
