"""Behaviour shared by the effvit_mm backbones: stage freezing, ``norm_eval``, activation
checkpointing and strict loading of the authors' checkpoints through ``init_cfg``."""
import copy

import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint import load_pretrained
from ..layers import switch_to_deploy


class EfficientBackbone(BaseModule):
    """Base class. Subclasses build ``self.patch_embed`` (the stem) and ``self.stages`` (the stages
    in order, each an iterable of blocks), set ``arch_settings`` (named variants, each a dict of
    per-stage lists) and ``arch_defaults`` (per-stage lists an arch dict may leave out), and may
    override the two steps of :meth:`forward` around each stage's blocks: :meth:`downsample` (from
    stage ``i - 1``'s output to stage ``i``'s input) and :meth:`stage_output`. ``family`` is the
    :class:`~effvit_mm.models.family.FamilySpec` that ``register_family`` attaches (its timm adapter
    and dense-only keys serve ``init_cfg``).
    """
    arch_settings = {}
    arch_defaults = {}
    family = None

    def __init__(self, arch, out_indices, frozen_stages=-1, norm_eval=False, with_cp=False, init_cfg=None):
        """Parses and checks ``arch`` (-> ``self.arch``) and ``out_indices`` (-> ``self.out_indices``,
        sorted, non-negative; ``self.num_features``: their ``embed_dims``)."""
        super().__init__(init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.arch = self._parse_arch(arch)
        dims = self.arch['embed_dims']
        self.out_indices = self._check_indices(out_indices, frozen_stages, len(dims))
        self.num_features = [dims[i] for i in self.out_indices]

    def _parse_arch(self, arch):
        """A variant name of ``arch_settings`` or a dict with the same keys (``arch_defaults`` may be
        left out) -> a new dict of per-stage lists, all of one length."""
        name = type(self).__name__
        if isinstance(arch, str):
            if arch.lower() not in self.arch_settings:
                raise ValueError(f"{name}: unknown arch '{arch}'; choose one of "
                                 f'{sorted(self.arch_settings)} or pass a dict')
            arch = self.arch_settings[arch.lower()]
        if not isinstance(arch, dict):
            raise TypeError(f'{name}: arch must be a str or a dict, not {type(arch).__name__}')
        arch = dict(copy.deepcopy(self.arch_defaults), **copy.deepcopy(arch))
        required = set(next(iter(self.arch_settings.values()))) | set(self.arch_defaults)
        if set(arch) != required:
            raise ValueError(f'{name}: arch dict needs exactly the keys {sorted(required)}; '
                             f'missing {sorted(required - set(arch))}, unknown {sorted(set(arch) - required)}')
        if len({len(v) for v in arch.values()}) != 1:
            raise ValueError(f'{name}: every arch entry needs one value per stage, got {arch}')
        return arch

    def _check_indices(self, out_indices, frozen_stages, num_stages):
        out_indices = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
        bad = [i for i in out_indices if not -num_stages <= i < num_stages]
        if not out_indices or bad:
            raise ValueError(f'{type(self).__name__}: out_indices {out_indices} must be a non-empty '
                             f'list of stage indices in [0, {num_stages - 1}]')
        if not -1 <= frozen_stages <= num_stages:
            raise ValueError(f'{type(self).__name__}: frozen_stages={frozen_stages} must be in '
                             f'[-1, {num_stages}] (-1: none, 0: stem, i: stem and stages 1..i)')
        return tuple(sorted(i % num_stages for i in out_indices))

    @property
    def stem(self):
        return self.patch_embed

    def frozen_modules(self):
        """The stem and the first ``frozen_stages`` stages (override to add e.g. output norms)."""
        if self.frozen_stages < 0:
            return []
        return [self.stem] + list(self.stages[:self.frozen_stages])

    def _freeze_stages(self):
        for module in self.frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    @property
    def num_stages(self):
        return len(self.arch['embed_dims'])

    def downsample(self, i, x):
        """Stage ``i``'s input from stage ``i - 1``'s output (default: as is, the stage downsamples)."""
        return x

    def stage_output(self, i, x):
        """What ``forward`` returns for stage ``i`` (default: its blocks' output)."""
        return x

    def forward(self, x):
        """(N, in_channels, H, W) -> a tuple of the outputs of the stages in ``out_indices``; the
        stages after the last of them are not run."""
        x = self.patch_embed(x)
        outs = []
        for i in range(self.out_indices[-1] + 1):
            x = self.run_blocks(self.stages[i], self.downsample(i, x) if i > 0 else x)
            if i in self.out_indices:
                outs.append(self.stage_output(i, x))
        return tuple(outs)

    def run_blocks(self, blocks, x):
        """Run a stage's blocks, with activation checkpointing when ``with_cp`` and training."""
        for block in blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def switch_to_deploy(self):
        """Deploy mode in place (:mod:`effvit_mm.models.layers.deploy`: the portable ``fuse``, then the
        CPU kernels on a CPU model); eval only."""
        return switch_to_deploy(self)

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            adapter, optional = (self.family.timm_adapter, self.family.dense_only_keys) if self.family else (None, ())
            load_pretrained(self, cfg['checkpoint'], adapter=adapter, prefix=cfg.get('prefix'), optional=optional)
            self._is_init = True
        else:
            super().init_weights()
