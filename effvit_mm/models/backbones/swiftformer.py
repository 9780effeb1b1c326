"""SwiftFormer: Efficient Additive Attention for Transformer-based Real-time Mobile Vision
Applications (ICCV 2023).

Paper: https://arxiv.org/abs/2303.15446 ; authors' code: https://github.com/Amshaker/SwiftFormer.

A stride-4 stem (two 3x3 stride-2 Conv-BN-ReLU) and four stages at strides 4 / 8 / 16 / 32, with a
3x3 stride-2 Conv-BN (``Embedding``) in front of stages 2-4. Every block of a stage is a ``ConvEncoder``
(dw 3x3 conv - BN - 1x1 conv - GELU - 1x1 conv, layer-scaled residual) except the last, a
``SwiftFormerEncoder``: a local representation (a ConvEncoder without expansion), efficient additive
attention and a BN-first MLP, the last two on layer-scaled residuals. Module names follow the
authors' released checkpoints (``patch_embed``, ``network.N``, ``norm0/2/4/6``); timm 1.0
``swiftformer_*`` state dicts are converted on load.

Pre- and post-July-2023 checkpoints: until 26 July 2023 the authors' attention softmaxed the Nx1
token weights along their singleton last axis, which makes every weight 1 (the global query was a plain
sum of the queries). The commits of that day (37a4fe9, 670dea3) replaced it by an L2 normalisation of
the weights along the token axis and, in the README, replaced all four checkpoint links by new files.
This module implements the fixed attention, as timm does. The files linked from the README of March
2023 (Google Drive ids starting ``15Ils``, ``1_0eW``, ``1jlww``, ``1ypBc`` for XS / S / L1 / L3) have
exactly the same keys and shapes, so they load here without any error, but give wrong features: use
the files linked since July 2023 (ids starting ``12Rch``, ``1awpc``, ``1SDza``, ``1DAxM``) or timm's
``swiftformer_*.dist_in1k`` weights.
"""
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from timm.layers import DropPath, trunc_normal_

from ...checkpoint import rename_keys
from ..family import FamilySpec, register_family
from ..layers import ConvAct, ResidualConv, fuse_bn_conv, fuse_conv_bn
from .base import EfficientBackbone

MLP_RATIO = 4
LAYER_SCALE_INIT = 1e-5  # of the attention and MLP branches; the conv branches start at 1


def _fold(module, conv_name, bn_name, bn_first=False):
    """Fold ``module.<bn_name>`` into ``module.<conv_name>`` in place (the BN becomes an Identity).

    ``bn_first``: the BN runs before the conv (which must then be 1x1). A no-op once folded.
    """
    bn = getattr(module, bn_name)
    if isinstance(bn, nn.BatchNorm2d):
        conv = getattr(module, conv_name)
        setattr(module, conv_name, fuse_bn_conv(bn, conv) if bn_first else fuse_conv_bn(conv, bn))
        setattr(module, bn_name, nn.Identity())
    return module


class Stem(nn.Sequential):
    """3x3 s2 Conv-BN-ReLU twice: (N, in_channels, H, W) -> (N, out_channels, H / 4, W / 4)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.Conv2d(in_channels, out_channels // 2, 3, 2, 1), nn.BatchNorm2d(out_channels // 2), nn.ReLU(),
            nn.Conv2d(out_channels // 2, out_channels, 3, 2, 1), nn.BatchNorm2d(out_channels), nn.ReLU())

    def fuse(self):
        return _fold(_fold(self, '0', '1'), '3', '4')


class Embedding(nn.Module):
    """Downsampling: 3x3 s2 conv (with bias) - BN, (N, C_in, H, W) -> (N, C_out, H / 2, W / 2)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.norm(self.proj(x))

    def fuse(self):
        return _fold(self, 'proj', 'norm')


class ConvEncoder(nn.Module):
    """``x + layer_scale * pw2(GELU(pw1(BN(dw3x3(x)))))``, (N, C, H, W) -> (N, C, H, W).

    With ``hidden_dim = 4C`` the authors' ``ConvEncoder``; with ``hidden_dim = C`` the local
    representation of ``SwiftFormerEncoder``. Neither has drop path in the authors' code.
    """

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, hidden_dim, 1)
        self.act = nn.GELU()
        self.pwconv2 = nn.Conv2d(hidden_dim, dim, 1)
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1))

    def forward(self, x):
        return x + self.layer_scale * self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))

    @torch.no_grad()
    def fuse(self):
        """Deploy form: dw conv with the BN folded, pw1 with the GELU fused, pw2 scaled by the layer
        scale and adding the residual (:class:`ResidualConv`)."""
        _fold(self, 'dwconv', 'norm')
        return ResidualConv(nn.Sequential(self.dwconv, ConvAct(self.pwconv1, 'gelu'),
                                          _scaled(self.pwconv2, self.layer_scale)))


class Mlp(nn.Module):
    """BN - 1x1 conv (C -> hidden) - GELU - 1x1 conv (hidden -> C), (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(dim)
        self.fc1 = nn.Conv2d(dim, hidden_dim, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden_dim, dim, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.norm1(x))))

    def fuse(self):
        """Deploy form: ``Sequential(fc1 with the BN folded and the GELU fused, fc2)``."""
        _fold(self, 'fc1', 'norm1', bn_first=True)
        return nn.Sequential(ConvAct(self.fc1, 'gelu'), self.fc2)


class EfficientAdditiveAttention(nn.Module):
    """Efficient additive attention (single head), (N, L, C) tokens -> (N, L, C), linear in L.

    Queries and keys are L2-normalised per token; the token weights ``q @ w_g`` (N, L, 1) are
    L2-normalised along the token axis (the post-July-2023 code, see the module docstring) and pool
    the queries into one global query (N, 1, C), which multiplies the keys element-wise.
    """

    def __init__(self, dim):
        super().__init__()
        self.to_query = nn.Linear(dim, dim)
        self.to_key = nn.Linear(dim, dim)
        self.w_g = nn.Parameter(torch.randn(dim, 1))
        self.scale = dim ** -0.5  # kept for parity with the authors' code; the L2 norm cancels it
        self.Proj = nn.Linear(dim, dim)
        self.final = nn.Linear(dim, dim)

    def forward(self, x):
        query = F.normalize(self.to_query(x), dim=-1)
        key = F.normalize(self.to_key(x), dim=-1)
        weights = F.normalize(query @ self.w_g * self.scale, dim=1)
        global_query = (weights * query).sum(dim=1, keepdim=True)
        return self.final(self.Proj(global_query * key) + query)


class SwiftFormerEncoder(nn.Module):
    """Local representation, then residual additive attention and residual MLP, each scaled by a
    per-channel layer scale (init 1e-5) and dropped with the block's drop path.

    (N, C, H, W) -> (N, C, H, W); the attention is global over the H*W tokens.
    """

    def __init__(self, dim, drop_path=0.0):
        super().__init__()
        self.local_representation = ConvEncoder(dim, dim)
        self.attn = EfficientAdditiveAttention(dim)
        self.linear = Mlp(dim, dim * MLP_RATIO)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.layer_scale_1 = nn.Parameter(torch.full((dim, 1, 1), LAYER_SCALE_INIT))
        self.layer_scale_2 = nn.Parameter(torch.full((dim, 1, 1), LAYER_SCALE_INIT))

    def forward(self, x):
        x = self.local_representation(x)
        x = x + self.drop_path(self.layer_scale_1 * _attend(self.attn, x))
        return x + self.drop_path(self.layer_scale_2 * self.linear(x))

    @torch.no_grad()
    def fuse(self):
        """Deploy form (children already fused): the layer scales folded into the attention's
        ``final`` linear and the MLP's ``fc2``, whose conv also adds the residual."""
        final = self.attn.final
        final.weight.mul_(self.layer_scale_1.view(-1, 1))
        final.bias.mul_(self.layer_scale_1.view(-1))
        *body, fc2 = self.linear
        mlp = ResidualConv(nn.Sequential(*body, _scaled(fc2, self.layer_scale_2)))
        return _SwiftFormerEncoderDeploy(self.local_representation, self.attn, mlp)


class _SwiftFormerEncoderDeploy(nn.Module):
    """:meth:`SwiftFormerEncoder.fuse`'s result: ``mlp(x + attn(local(x)))``, with the layer
    scales folded and ``mlp`` adding its own residual. (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, local_representation, attn, mlp):
        super().__init__()
        self.local_representation, self.attn, self.mlp = local_representation, attn, mlp

    def forward(self, x):
        x = self.local_representation(x)
        return self.mlp(x + _attend(self.attn, x))


def _attend(attn, x):
    """``attn`` on the (N, H*W, C) tokens of (N, C, H, W) ``x``, back to (N, C, H, W). (Channels-last
    ``x``, as in deploy mode, makes both transposes free.)"""
    B, C, H, W = x.shape
    return attn(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(B, C, H, W)


def _scaled(conv, layer_scale):
    """``conv`` with its output channels multiplied by ``layer_scale`` (C, 1, 1), in place."""
    conv.weight.mul_(layer_scale.view(-1, 1, 1, 1))
    conv.bias.mul_(layer_scale.view(-1))
    return conv


def _init_weights(m):
    """The authors' initialisation: truncated normal (std 0.02) convs and linears, zero biases."""
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


@MODELS.register_module()
class SwiftFormer(EfficientBackbone):
    """SwiftFormer backbone (the authors' dense-prediction model, ``fork_feat=True``).

    Args:
        arch (str | dict): ``'xs'``, ``'s'``, ``'l1'``, ``'l3'`` or a dict with keys ``embed_dims``
            and ``depths`` (one value per stage; each depth >= 1).
        in_channels (int): input channels. Default 3.
        out_indices (Sequence[int]): stages to output; default all four (strides 4, 8, 16, 32).
            Each output passes through its own BatchNorm ``norm{2i}``, as in the authors' model.
        frozen_stages (int): -1 none, 0 the stem, i the stem, stages 1..i, the downsampling layers
            in front of them and their output norms.
        norm_eval (bool): keep BatchNorm layers in eval mode while training.
        with_cp (bool): activation checkpointing of each block while training.
        drop_path_rate (float): stochastic depth, applied as the authors do: only the
            ``SwiftFormerEncoder`` (last block of each stage) drops, with probability
            ``drop_path_rate * b / (total_blocks - 1)`` where ``b`` is its index among all blocks
            (so the last block gets ``drop_path_rate``); ``ConvEncoder`` blocks and the local
            representation never drop (timm's port also drops ``ConvEncoder`` blocks).
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads the authors'
            release (classification or dense model), a timm ``swiftformer_*`` or an mmdet file
            strictly, see :func:`effvit_mm.checkpoint.load_pretrained`; output norms missing from a
            classification checkpoint keep their initialisation. Use post-July-2023 checkpoints only
            (module docstring).

    Input (N, in_channels, H, W), any H, W; outputs a tuple of (N, embed_dims[i], ceil(H / 2**(i+2)),
    ceil(W / 2**(i+2))) for i in ``out_indices``. Stages after the last output are built (so that
    checkpoints load) but not run.
    """
    arch_settings = {
        'xs': dict(embed_dims=[48, 56, 112, 220], depths=[3, 3, 6, 4]),
        's': dict(embed_dims=[48, 64, 168, 224], depths=[3, 3, 9, 6]),
        'l1': dict(embed_dims=[48, 96, 192, 384], depths=[4, 3, 10, 5]),
        'l3': dict(embed_dims=[64, 128, 320, 512], depths=[4, 4, 12, 6]),
    }

    def __init__(self, arch='l1', in_channels=3, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 norm_eval=False, with_cp=False, drop_path_rate=0.0, init_cfg=None):
        super().__init__(arch, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        dims, depths = self.arch['embed_dims'], self.arch['depths']

        self.patch_embed = Stem(in_channels, dims[0])
        total, network = sum(depths), []
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            if i > 0:
                network.append(Embedding(dims[i - 1], dim))
            last = sum(depths[:i + 1]) - 1  # global index of the stage's SwiftFormerEncoder
            drop_path = drop_path_rate * last / max(total - 1, 1)
            network.append(nn.Sequential(*[ConvEncoder(dim, dim * MLP_RATIO) for _ in range(depth - 1)],
                                         SwiftFormerEncoder(dim, drop_path)))
        self.network = nn.ModuleList(network)
        for i in self.out_indices:
            self.add_module(f'norm{2 * i}', nn.BatchNorm2d(dims[i]))
        self.apply(_init_weights)
        self._freeze_stages()

    @property
    def stages(self):
        return list(self.network[0::2])

    def frozen_modules(self):
        if self.frozen_stages < 0:
            return []
        frozen = [self.patch_embed, *self.network[:max(2 * self.frozen_stages - 1, 0)]]
        return frozen + [getattr(self, f'norm{2 * i}') for i in self.out_indices if i < self.frozen_stages]

    def downsample(self, i, x):
        return self.network[2 * i - 1](x)

    def stage_output(self, i, x):
        return getattr(self, f'norm{2 * i}')(x)


def swiftformer_from_timm(state_dict):
    """timm 1.0 ``swiftformer_*`` names -> the SwiftFormer authors' names (the inverse of timm's
    ``checkpoint_filter_fn``): ``stem`` -> ``patch_embed``, ``stages.i.blocks`` -> ``network.{2i}``,
    ``stages.i.downsample`` -> ``network.{2i-1}``, ``attn.proj`` -> ``attn.Proj``, ``head_dist`` ->
    ``dist_head``, ``layer_scale*.gamma`` -> ``layer_scale*`` of shape (C, 1, 1). Authors' keys pass
    unchanged."""
    def stage_key(m):
        stage = int(m[1])
        return f'network.{2 * stage if m[2] == "blocks" else 2 * stage - 1}.'

    rules = [(r'^stem\.', 'patch_embed.'), (r'^head_dist\.', 'dist_head.'),
             (r'\.attn\.proj\.', '.attn.Proj.'), (r'^stages\.(\d+)\.(blocks|downsample)\.', stage_key)]
    out = {}
    for key, value in rename_keys(state_dict, rules).items():
        gamma = re.fullmatch(r'(.*\.layer_scale(?:_[12])?)\.gamma', key)
        out[gamma[1] if gamma else key] = value.reshape(-1, 1, 1) if gamma else value
    return out


register_family(FamilySpec(
    name='swiftformer', backbone=SwiftFormer, head='SwiftFormerClsHead',
    signatures={'authors': 'network.0.0.dwconv.weight', 'timm': 'stages.0.blocks.0.dwconv.weight'},
    backbone_modules=('patch_embed', 'network'),
    classifier_modules={'norm': 'backbone.norm6', 'head': 'head.head', 'dist_head': 'head.dist_head'},
    dense_only_keys=('norm0', 'norm2', 'norm4', 'norm6'),
    timm_adapter=swiftformer_from_timm, timm_models={a: f'swiftformer_{a}' for a in SwiftFormer.arch_settings},
    paper={('xs', 224): (3.5e6, 0.4e9), ('s', 224): (6.1e6, 1.0e9), ('l1', 224): (12.1e6, 1.6e9),
           ('l3', 224): (26.5e6, 4.0e9)}))
