"""`python -m tests.corpus CASE DEST`: materialize a corpus case and print its path."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.corpus import CASES, CorpusError, materialize


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.corpus", description=__doc__)
    parser.add_argument("case", choices=CASES)
    parser.add_argument("dest", type=Path, help="directory to create (must be absent or empty)")
    parser.add_argument("--no-git", action="store_true", help="do not make it a git repository")
    args = parser.parse_args(argv)
    try:
        path = materialize(args.case, args.dest, git=not args.no_git)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
