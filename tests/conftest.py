import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny job folder, trained once per session by ``python -m ablate`` in this process
    (``.hydra/config.yaml``, ``checkpoint.pt``, ``detections.json``), for the tests that use a trained model."""
    import logging
    import sys

    from hydra.core.global_hydra import GlobalHydra

    from ablate.__main__ import main
    from tests.tiny import TINY

    folder = tmp_path_factory.mktemp("trained_run") / "job"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    argv = ["ablate", *TINY, "train.max_steps=8", "logger=none", f"data.root={folder.parent / 'data'}",
            f"hydra.run.dir={folder}", "hydra/job_logging=none", "hydra/hydra_logging=none"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        try:
            main()
        finally:
            GlobalHydra.instance().clear()
            root.handlers[:], root.level = handlers, level
    return folder


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A private single-node SLURM cluster (tests/slurm/cluster.py) for the whole session, started on first use;
    it raises (the tests error, loudly) where the installed daemons do not come up."""
    from tests.slurm.cluster import Cluster

    c = Cluster(tmp_path_factory.mktemp("slurm_cluster"))
    c.start()
    try:
        yield c
    finally:
        c.stop()
