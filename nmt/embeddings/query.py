"""``python -m nmt.embeddings.query``: the command lives in :mod:`nmt.cli.query_vectors`."""

from nmt.cli.query_vectors import main

if __name__ == "__main__":
    raise SystemExit(main())
