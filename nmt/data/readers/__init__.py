"""Corpus readers, one module per dataset (the older ones live in :mod:`nmt.data.corpora`)."""
