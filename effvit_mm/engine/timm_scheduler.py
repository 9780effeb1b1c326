"""timm's learning-rate schedulers inside mmengine, stepped as the authors' training loops step them.

The SHViT and SwiftFormer authors train with DeiT's loop: timm's ``create_scheduler`` builds a
``CosineLRScheduler`` (which sets every group to ``warmup_lr_init`` at once) and the loop calls
``lr_scheduler.step(epoch)`` *after* each epoch, so epoch ``e`` trains with the value timm computes
for ``e - 1`` (for ``e = 0``, the initial value). The LITv2 authors train with Swin's loop: the
scheduler counts optimiser updates (``t_in_epochs=False``) and ``lr_scheduler.step_update(epoch *
num_steps + idx)`` runs after each update, so update ``i`` trains with timm's value for ``i - 1``.

``TimmLRScheduler`` builds the timm scheduler on the runner's optimiser and calls it in exactly this
order from mmengine's ``ParamSchedulerHook``: mmengine's step ``s`` (after epoch / iteration
``s - 1``) is the authors' ``step(s - 1)`` / ``step_update(s - 1)``. So the curve is timm's own, not an
approximation by mmengine's schedulers::

    param_scheduler = dict(type='TimmLRScheduler', timm_type='CosineLRScheduler', by_epoch=True,
                           t_initial=300, warmup_t=5, warmup_lr_init=1e-6, lr_min=1e-5)

``convert_to_iter_based=True`` turns ``t_initial``, ``warmup_t`` and ``decay_t`` from epochs into
updates as Swin's ``build_scheduler`` does (``int(epochs * updates_per_epoch)``) and steps per
update. With ``scale_floors=True`` the absolute ``warmup_lr_init`` and ``lr_min`` follow the lr when
``--auto-scale-lr`` rescales it, as Swin's ``main.py`` scales them with the total batch size.
"""
from collections import Counter

import timm.scheduler
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS

# timm arguments counted in epochs (converted to updates by ``convert_to_iter_based``)
_EPOCH_ARGS = ('t_initial', 'warmup_t', 'decay_t')


@PARAM_SCHEDULERS.register_module()
class TimmLRScheduler(_ParamScheduler):
    """A ``timm.scheduler`` learning-rate scheduler driven by mmengine (see the module docstring).

    Args:
        optimizer (OptimWrapper | Optimizer): the runner's optimiser.
        timm_type (str): a class of ``timm.scheduler``, e.g. ``'CosineLRScheduler'``.
        by_epoch (bool): step after every epoch (``step(epoch)``), else after every update
            (``step_update(update)``). timm's ``t_in_epochs`` follows it.
        scale_floors (bool): scale ``warmup_lr_init`` and ``lr_min`` by the ratio that
            ``--auto-scale-lr`` applied to the lr (the ratio of the groups' lr to the configured lr).
        **timm_args: the timm scheduler's arguments (``t_initial``, ``warmup_t``, ...).
    """

    def __init__(self, optimizer, timm_type, by_epoch=True, scale_floors=False, begin=0, end=INF,
                 last_step=-1, verbose=False, **timm_args):
        scheduler_cls = getattr(timm.scheduler, timm_type, None)
        if not (isinstance(scheduler_cls, type) and issubclass(scheduler_cls, timm.scheduler.scheduler.Scheduler)):
            raise ValueError(f'TimmLRScheduler: timm.scheduler has no scheduler {timm_type!r}; use a class '
                             'name such as CosineLRScheduler or StepLRScheduler')
        if 't_in_epochs' in timm_args:
            raise ValueError('TimmLRScheduler: set by_epoch, not t_in_epochs (it follows by_epoch)')
        torch_optimizer = getattr(optimizer, 'optimizer', optimizer)
        if scale_floors:
            ratio = _auto_scale_ratio(torch_optimizer)
            for key in ('warmup_lr_init', 'lr_min'):
                if key in timm_args:
                    timm_args[key] = timm_args[key] * ratio
        self.timm_type = timm_type
        self.timm = scheduler_cls(torch_optimizer, t_in_epochs=by_epoch, **timm_args)
        super().__init__(optimizer, 'lr', begin=begin, end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, epoch_length, begin=0, end=INF, by_epoch=True, **kwargs):
        """The scheduler counted in updates: epoch arguments times ``epoch_length``, rounded down."""
        if not by_epoch:
            raise ValueError('TimmLRScheduler: convert_to_iter_based needs by_epoch=True')
        for key in _EPOCH_ARGS:
            if key in kwargs:
                kwargs[key] = int(kwargs[key] * epoch_length)
        end = end if end == INF else int(end * epoch_length)
        return cls(*args, begin=int(begin * epoch_length), end=end, by_epoch=False, **kwargs)

    def step(self):
        """mmengine's step ``s`` (after epoch / update ``s - 1``): the authors' ``step(s - 1)`` /
        ``step_update(s - 1)``. Step 0 (at construction) keeps the value timm set initially."""
        self._global_step += 1
        if self.begin <= self._global_step < self.end:
            self.last_step += 1
            if self.last_step > 0:
                if self.by_epoch:
                    self.timm.step(self.last_step - 1)
                else:
                    self.timm.step_update(self.last_step - 1)
                if self.verbose:
                    for i, group in enumerate(self.optimizer.param_groups):
                        self.print_value(True, i, group['lr'])
        self._last_value = [group['lr'] for group in self.optimizer.param_groups]

    def state_dict(self):
        state = {key: value for key, value in self.__dict__.items() if key not in ('optimizer', 'timm')}
        state['timm'] = self.timm.state_dict()
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        self.timm.load_state_dict(state_dict.pop('timm'))
        self.__dict__.update(state_dict)


def _auto_scale_ratio(optimizer):
    """The factor by which ``--auto-scale-lr`` multiplied every group's lr: mmengine scales the groups
    but not ``optimizer.defaults['lr']`` (the configured lr), so it is the ratio of the groups' most
    common lr (those without an lr multiplier) to the configured one (1.0 without scaling)."""
    lr = Counter(group['lr'] for group in optimizer.param_groups).most_common(1)[0][0]
    return lr / optimizer.defaults['lr']
