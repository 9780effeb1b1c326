"""Whether training stops after this iteration, the same answer on every rank, for one all-reduce an iteration.

Two things stop a run: a preemption signal that reached any rank
(:class:`~effvit_mm.engine.hooks.PreemptionHook`) and a non-finite loss on any rank
(:class:`~effvit_mm.engine.hooks.NonFiniteLossHook`). Every rank must stop at the same iteration, so each
needs the others' view: :func:`agreed_flags` reduces both flags with one ``all_reduce`` (max), for
whichever hook asks first in an iteration, and gives the same answer to the hooks that ask after it.
Without a process group it reduces nothing.
"""
import math

import torch
from mmengine.dist import all_reduce

__all__ = ['agreed_flags', 'loss_terms', 'note_signal', 'reset']

_state = dict(signal=0, key=None, flags=(0, False))


def reset():
    """Forget a signal and the last answer (a new training run in this process)."""
    _state.update(signal=0, key=None, flags=(0, False))


def note_signal(signum):
    """This process received the preemption signal ``signum`` (called from the signal handler)."""
    _state['signal'] = int(signum)


def loss_terms(outputs):
    """{name: value} of the loss terms in a training step's ``outputs`` (mmengine's ``log_vars``)."""
    return {k: float(torch.as_tensor(v).detach()) for k, v in (outputs or {}).items() if 'loss' in k}


def agreed_flags(runner, outputs):
    """(the preemption signal any rank received, else 0; whether any rank's loss terms in ``outputs`` are
    NaN or infinite) after the current training iteration, the same on every rank."""
    key = (id(runner), runner.iter)
    if _state['key'] != key:
        finite = all(map(math.isfinite, loss_terms(outputs).values()))
        flags = torch.tensor([_state['signal'], int(not finite)], dtype=torch.int64)
        all_reduce(flags, op='max')
        _state.update(key=key, flags=(int(flags[0]), bool(flags[1])))
    return _state['flags']
