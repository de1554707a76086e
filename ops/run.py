"""Start one long-running ledger process: python -m ops.run <kind> [--metrics-port N] [options].

`python -m ops.run <kind> --help` lists the options of a kind; the wiring of each kind is in
ops/root.py.
"""

from __future__ import annotations

import sys

from ops import root


def usage() -> str:
    width = max(len(k) for k in root.KINDS)
    kinds = "\n".join(f"  {k.name:<{width}}  {k.summary}" for k in root.KINDS.values())
    return (f"usage: python -m ops.run <kind> [--metrics-port N] [options]\n\n{__doc__.splitlines()[0]}\n\n"
            f"kinds:\n{kinds}\n\n`python -m ops.run <kind> --help` lists the options of a kind.")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if args else 2)
    kind = root.KINDS.get(args[0])
    if kind is None:
        print(f"unknown kind {args[0]!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    kind.main(args[1:])


if __name__ == "__main__":
    main()
