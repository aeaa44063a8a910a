"""scripts/audit_offline.py: OSV range logic on small synthetic advisories."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import script_module


@pytest.fixture(scope="module")
def audit():
    with script_module("audit_offline") as module:
        yield module


ADVISORIES = {
    # introduced/fixed, two ranges (a backported fix on 1.x)
    "demo-pkg/PYSEC-0001-1.yaml": """\
id: PYSEC-0001-1
aliases: [CVE-0001-1111, GHSA-aaaa-bbbb-cccc]
affected:
- package: {ecosystem: PyPI, name: demo-pkg}
  ranges:
  - type: GIT
    repo: https://example.com/demo
    events: [{introduced: "0"}, {fixed: 0123456789abcdef}]
  - type: ECOSYSTEM
    events: [{introduced: "0"}, {fixed: "1.2.3"}, {introduced: "2.0"}, {fixed: "2.1.0"}]
""",
    # introduced/last_affected (no fix released)
    "lastpkg/PYSEC-0002-1.yaml": """\
id: PYSEC-0002-1
affected:
- package: {ecosystem: PyPI, name: lastpkg}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "1.0"}, {last_affected: "1.4.0"}]
""",
    # an explicit versions list only, no range
    "listpkg/PYSEC-0003-1.yaml": """\
id: PYSEC-0003-1
affected:
- package: {ecosystem: PyPI, name: listpkg}
  versions: ["0.9", "1.0.0rc1", "1.1"]
""",
    # withdrawn: never reported even though the range matches everything
    "gonepkg/PYSEC-0004-1.yaml": """\
id: PYSEC-0004-1
withdrawn: "2023-06-06T10:37:00Z"
affected:
- package: {ecosystem: PyPI, name: gonepkg}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0"}]
""",
    # a name that needs PEP 503 normalisation
    "Zope.Interface_X/PYSEC-0005-1.yaml": """\
id: PYSEC-0005-1
affected:
- package: {ecosystem: PyPI, name: Zope.Interface_X}
  ranges:
  - type: ECOSYSTEM
    events: [{introduced: "0"}, {fixed: "5.0"}]
""",
}


@pytest.fixture
def db(tmp_path) -> Path:
    for name, text in ADVISORIES.items():
        path = tmp_path / "advisory-database" / "vulns" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "advisory-database"


def ids(audit, db: Path, pins: dict[str, str]) -> dict[str, list[str]]:
    index = audit.load_database(db)
    targets = [audit.Target(audit.normalise(n), v, ["test"]) for n, v in pins.items()]
    found: dict[str, list[str]] = {}
    for f in audit.audit(targets, index, []):
        found.setdefault(f"{f.target.name}=={f.target.version}", []).append(f.advisory.id)
    return found


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.1", True),
        ("1.2.2", True),
        ("1.2.3rc1", True),  # a pre-release of the fix is still before the fix
        ("1.2.3", False),  # fixed is exclusive
        ("1.9", False),
        ("2.0", True),  # introduced is inclusive
        ("2.0.9", True),
        ("2.1.0", False),
        ("3.0", False),
    ],
)
def test_introduced_fixed(audit, db, version, affected):
    assert bool(ids(audit, db, {"demo-pkg": version})) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [("0.9", False), ("1.0", True), ("1.4.0", True), ("1.4", True), ("1.4.1", False)],
)
def test_last_affected_is_inclusive(audit, db, version, affected):
    assert bool(ids(audit, db, {"lastpkg": version})) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.9", True),
        ("0.9.0", True),
        ("1.0.0rc1", True),
        ("1.0", False),
        ("1.1", True),
        ("1.1+local", True),
        ("1.2", False),
    ],
)
def test_explicit_versions_list(audit, db, version, affected):
    assert bool(ids(audit, db, {"listpkg": version})) is affected


def test_withdrawn_advisories_are_skipped(audit, db):
    assert ids(audit, db, {"gonepkg": "1.0"}) == {}
    assert "gonepkg" not in audit.load_database(db)


@pytest.mark.parametrize("spelling", ["zope-interface-x", "ZOPE_interface.x", "zope--interface__x"])
def test_names_are_normalised(audit, db, spelling):
    assert ids(audit, db, {spelling: "4.0"}) == {"zope-interface-x==4.0": ["PYSEC-0005-1"]}
    assert ids(audit, db, {spelling: "5.0"}) == {}


def test_cli_reports_findings_from_requirements_and_exits_1(audit, db, tmp_path, capsys):
    base = tmp_path / "requirements.txt"
    base.write_text("# runtime\nDemo_Pkg==1.0  # pinned\nlistpkg==1.0\nunpinned>=1\n")
    extra = tmp_path / "requirements-extra.txt"
    extra.write_text("-r requirements.txt\nlastpkg[extra]==1.3 ; python_version >= '3'\n")
    code = audit.main(["--db", str(db), "-r", str(extra)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        "demo-pkg==1.0: PYSEC-0001-1 (CVE-0001-1111, GHSA-aaaa-bbbb-cccc); fixed in 1.2.3, "
        "2.1.0 [requirements.txt]",
        "lastpkg==1.3: PYSEC-0002-1; no fixed version [requirements-extra.txt]",
    ]
    assert "not pinned with ==, not audited: unpinned>=1" in err


def test_cli_exits_0_when_nothing_is_affected(audit, db, tmp_path, capsys):
    req = tmp_path / "requirements.txt"
    req.write_text("demo-pkg==2.1.0\nlastpkg==1.5\nlistpkg==1.2\ngonepkg==1.0\n")
    assert audit.main(["--db", str(db), "-r", str(req)]) == 0
    assert capsys.readouterr().out == ""


def test_installed_distributions_are_audited(audit, db, monkeypatch, capsys):
    """--installed reads versions with importlib.metadata (transitive dependencies too)."""

    class Dist:
        def __init__(self, name: str, version: str):
            self.metadata, self.version = {"Name": name}, version

    dists = [Dist("Demo.Pkg", "2.0.1"), Dist("safe", "1.0")]
    monkeypatch.setattr(audit.metadata, "distributions", lambda: dists)
    assert audit.main(["--db", str(db), "--installed"]) == 1
    assert capsys.readouterr().out.startswith("demo-pkg==2.0.1: PYSEC-0001-1 ")


def test_usage_errors_exit_2(audit, tmp_path):
    assert audit.main(["--db", str(tmp_path / "missing"), "--installed"]) == 2
    assert audit.main(["--db", str(tmp_path)]) == 2  # nothing to audit
    assert audit.main(["--db", str(tmp_path), "--installed"]) == 2  # an empty database
