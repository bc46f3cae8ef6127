"""A private single-node SLURM cluster for the whole session, started only where the packages are installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.slurm.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("slurm_cluster"))
    c.start()  # raises (the tests error, loudly) if the installed daemons do not come up
    try:
        yield c
    finally:
        c.stop()
