"""A private single-node SLURM cluster for the whole session, started only where the packages are installed."""

from __future__ import annotations

# The session's cluster fixture (`cluster`) lives in tests/conftest.py: tests/test_docs.py runs the documented
# SLURM commands against the same cluster.
