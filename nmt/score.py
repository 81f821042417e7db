"""``python -m nmt.score``: the command lives in :mod:`nmt.cli.score`."""

from nmt.cli.score import main

if __name__ == "__main__":
    raise SystemExit(main())
