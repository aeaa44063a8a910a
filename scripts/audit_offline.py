"""Offline known-vulnerability audit against a local copy of the PyPA advisory database.

pip-audit needs PyPI's JSON API or OSV over the network; this needs neither. Point it at a
checkout of https://github.com/pypa/advisory-database (``vulns/<package>/PYSEC-*.yaml``, OSV
schema) and give it requirements files and/or ``--installed`` (every distribution installed
in the interpreter running this script, so transitive dependencies are audited too):

    python scripts/audit_offline.py --db advisory-database -r requirements.txt --installed

Each affected ``package==version`` is printed with the advisory id, its aliases and the
fixed version(s). Exit status: 0 no finding, 1 at least one finding, 2 usage error.

Matching follows OSV: an advisory affects a version if it is in ``affected[].versions`` or
inside an ``ECOSYSTEM`` range of ``affected[].ranges[].events`` (``introduced``, ``fixed``,
``last_affected``), compared with ``packaging.version``. Names are normalised per PEP 503.
Withdrawn advisories are skipped. The audit is only as recent as the database copy.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

try:  # the C parser: the whole database loads in about 2 s
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]


def normalise(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(text: Any) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


@dataclass(frozen=True)
class Advisory:
    """One advisory as it applies to one package (one `affected` entry)."""

    id: str
    aliases: tuple[str, ...]
    package: str  # normalised
    events: tuple[tuple[tuple[str, str], ...], ...]  # ECOSYSTEM ranges: ((kind, version), ...)
    versions: tuple[str, ...]
    source: str

    def affects(self, version: Version) -> bool:
        """True if `version` is listed or falls inside one of the ECOSYSTEM ranges."""
        public = Version(version.public)  # "2.13.0+cpu" is the release 2.13.0
        for listed in self.versions:
            v = _version(listed)
            if v is not None and Version(v.public) == public:
                return True
        return any(in_range(version, events) for events in self.events)

    def fixed_in(self, version: Version) -> list[str]:
        """Fixed versions above `version` (the upgrade targets), lowest first."""
        fixes = {
            bound
            for events in self.events
            for kind, bound in events
            if kind == "fixed" and (v := _version(bound)) is not None and v > version
        }
        return sorted(fixes, key=Version)


def in_range(version: Version, events: Iterable[tuple[str, str]]) -> bool:
    """OSV ECOSYSTEM range evaluation: walk the events in version order; `introduced` at or
    below the version opens the range, `fixed` at or below it / `last_affected` strictly below
    it closes it. Events whose version cannot be parsed are ignored."""
    parsed: list[tuple[Version, int, str]] = []
    for kind, bound in events:
        if kind == "introduced" and str(bound) == "0":  # every version: 0.dev0 sorts first
            parsed.append((Version("0.dev0"), 0, kind))
        elif kind in ("introduced", "fixed", "last_affected"):
            v = _version(bound)
            if v is not None:
                parsed.append((v, 0 if kind == "introduced" else 1, kind))
    affected = False
    for bound, _, kind in sorted(parsed):
        if kind == "introduced" and version >= bound:
            affected = True
        elif (kind == "fixed" and version >= bound) or (
            kind == "last_affected" and version > bound
        ):
            affected = False
    return affected


def _advisories_in(path: Path) -> Iterator[Advisory]:
    doc = yaml.load(path.read_text(encoding="utf-8"), Loader=SafeLoader)
    if not isinstance(doc, dict) or doc.get("withdrawn") or "id" not in doc:
        return
    for entry in doc.get("affected") or []:
        package = entry.get("package") or {}
        if str(package.get("ecosystem", "PyPI")) != "PyPI" or not package.get("name"):
            continue
        ranges = tuple(
            tuple(
                (kind, str(bound))
                for event in r.get("events") or []
                for kind, bound in event.items()
            )
            for r in entry.get("ranges") or []
            if r.get("type") == "ECOSYSTEM"
        )
        yield Advisory(
            id=str(doc["id"]),
            aliases=tuple(str(a) for a in doc.get("aliases") or []),
            package=normalise(str(package["name"])),
            events=ranges,
            versions=tuple(str(v) for v in entry.get("versions") or []),
            source=str(path),
        )


def load_database(db: Path) -> dict[str, list[Advisory]]:
    """Every non-withdrawn advisory under `db` (its `vulns/` folder if there is one), by
    normalised package name."""
    root = db / "vulns" if (db / "vulns").is_dir() else db
    index: dict[str, list[Advisory]] = {}
    for path in sorted(root.rglob("*.yaml")):
        for advisory in _advisories_in(path):
            index.setdefault(advisory.package, []).append(advisory)
    return index


@dataclass
class Target:
    """A package version to audit and where it came from."""

    name: str  # normalised
    version: str
    origins: list[str] = field(default_factory=list)


def read_requirements(path: Path, warn: list[str], seen: set[Path] | None = None) -> list[Target]:
    """`name==version` pins of a requirements file, following `-r` includes. Anything not
    pinned with `==` is reported in `warn` (it cannot be audited without an installed copy)."""
    seen = seen if seen is not None else set()
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    targets: list[Target] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            include = path.parent / line.split(None, 1)[1].strip()
            targets += read_requirements(include, warn, seen)
            continue
        if line.startswith("-"):
            warn.append(f"{path.name}: option line not audited: {line}")
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            warn.append(f"{path.name}: cannot parse: {line}")
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if len(pins) != 1 or "*" in pins[0]:
            warn.append(f"{path.name}: not pinned with ==, not audited: {line}")
            continue
        targets.append(Target(normalise(req.name), pins[0], [path.name]))
    return targets


def installed() -> list[Target]:
    """Every distribution importlib.metadata finds for this interpreter."""
    return [
        Target(normalise(d.metadata["Name"]), d.version, ["installed"])
        for d in metadata.distributions()
        if d.metadata["Name"]
    ]


def merge(targets: Iterable[Target]) -> list[Target]:
    """One target per (name, version), with all its origins."""
    merged: dict[tuple[str, str], Target] = {}
    for t in targets:
        key = (t.name, t.version)
        if key in merged:
            merged[key].origins += [o for o in t.origins if o not in merged[key].origins]
        else:
            merged[key] = Target(t.name, t.version, list(t.origins))
    return sorted(merged.values(), key=lambda t: (t.name, _version(t.version) or Version("0")))


@dataclass(frozen=True)
class Finding:
    target: Target
    advisory: Advisory

    def line(self) -> str:
        a, t = self.advisory, self.target
        aliases = f" ({', '.join(a.aliases)})" if a.aliases else ""
        fixes = a.fixed_in(Version(t.version))
        fixed = f"fixed in {', '.join(fixes)}" if fixes else "no fixed version"
        return f"{t.name}=={t.version}: {a.id}{aliases}; {fixed} [{', '.join(t.origins)}]"


def audit(
    targets: Iterable[Target], db: dict[str, list[Advisory]], warn: list[str]
) -> list[Finding]:
    findings: list[Finding] = []
    for target in targets:
        version = _version(target.version)
        if version is None:
            warn.append(f"{target.name}=={target.version}: not a PEP 440 version, not audited")
            continue
        findings += [Finding(target, a) for a in db.get(target.name, []) if a.affects(version)]
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, type=Path, help="advisory-database checkout")
    parser.add_argument("-r", "--requirement", action="append", default=[], type=Path)
    parser.add_argument(
        "--installed", action="store_true", help="also audit every installed distribution"
    )
    args = parser.parse_args(argv)
    if not args.db.is_dir():
        print(f"audit_offline: {args.db}: no such directory", file=sys.stderr)
        return 2
    if not args.requirement and not args.installed:
        print("audit_offline: give -r FILE and/or --installed", file=sys.stderr)
        return 2
    warn: list[str] = []
    targets: list[Target] = []
    for path in args.requirement:
        if not path.is_file():
            print(f"audit_offline: {path}: no such file", file=sys.stderr)
            return 2
        targets += read_requirements(path, warn)
    if args.installed:
        targets += installed()
    targets = merge(targets)
    db = load_database(args.db)
    if not db:
        print(f"audit_offline: {args.db}: no advisories found", file=sys.stderr)
        return 2
    findings = audit(targets, db, warn)
    for message in warn:
        print(f"warning: {message}", file=sys.stderr)
    for finding in findings:
        print(finding.line())
    affected = {(f.target.name, f.target.version) for f in findings}
    print(
        f"{len(targets)} package versions audited against {sum(map(len, db.values()))} "
        f"advisories: {len(findings)} findings in {len(affected)} package versions",
        file=sys.stderr,
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
