"""Write the bad-input corpus (tests/reliability/corpus.py) to a directory, default
tests/data/bad/ (git-ignored by convention: the tests build it in a temporary directory).

Usage: python scripts/make_bad_corpus.py [OUT_DIR]; then e.g. `upscaler probe OUT_DIR/...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.corpus import build  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "data" / "bad"
    for case in build(out):
        expected = "valid" if case.valid else (f"exit {case.exit_code}" if case.exit_code > 0
                                               else "refused or valid")  # fmt: skip
        print(f"{case.name:<26} {expected:<18} {case.path.relative_to(out)}")


if __name__ == "__main__":
    main()
