"""Stop signals: SIGTERM (torchrun, scancel, preemption) and SIGUSR2 (submitit, ``signal_delay_s`` before the time
limit) only set a flag; the training loop finishes its step, checkpoints, then hands the signal over."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

STOP_SIGNALS = [signal.SIGTERM] + ([signal.SIGUSR2] if hasattr(signal, "SIGUSR2") else [])


class Preempted(BaseException):
    """SIGTERM (e.g. SLURM preemption): a checkpoint was written; relaunching resumes from it.

    A ``BaseException``, as ``KeyboardInterrupt``: Hydra's launcher catches ``Exception`` and would go on to the
    next job of a multirun, while a stop signal means stop the process.
    """


class StopSignals:
    """``with StopSignals() as stop:`` — ``stop.pending`` is the signal received (or None) until ``hand_over``."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending = signum

    def hand_over(self, step: int) -> None:
        """After the checkpoint: call the handler that was installed before (submitit's requeues on SIGUSR2 and
        exits; on SIGTERM it carries on), or stop with ``Preempted`` where the default action was to die."""
        signum, self.pending = self.pending, None
        if signum is None:  # another rank was signalled: this one checkpointed with it and goes on
            return
        handler = self._previous.get(signum)
        if not callable(handler):
            raise Preempted(f"stopped by signal {signum} at step {step}; checkpoint written")
        handler(signum, None)
