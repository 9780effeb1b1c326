"""mmengine hooks of effvit_mm, one per file (importing registers them in mmengine's root ``HOOKS``)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLoss, NonFiniteLossHook
from .preemption_hook import PREEMPTED_EXIT_CODE, PreemptionHook
from .progress_bar_hook import ProgressBarHook
from .random_state_hook import RandomStateHook

__all__ = ['PREEMPTED_EXIT_CODE', 'AtomicCheckpointHook', 'NonFiniteLoss', 'NonFiniteLossHook', 'PreemptionHook',
           'ProgressBarHook', 'RandomStateHook']
