"""SHViT: Single-Head Vision Transformer with Memory Efficient Macro Design (CVPR 2024).

Paper: https://arxiv.org/abs/2401.16456 ; authors' code: https://github.com/ysj9909/SHViT.

A 16x16 stem (four 3x3 stride-2 Conv-BN) and three stages at strides 16 / 32 / 64. Stage 1 blocks
have no token mixer ("i" blocks); stages 2-3 use single-head attention on ``partial_dim`` of the
channels ("s" blocks). Stages 2-3 start with a downsampling unit (dw-conv + FFN, patch merging,
dw-conv + FFN). Module names follow the authors' released checkpoints (``patch_embed``,
``blocks1``..``blocks3``); timm 1.0 ``shvit_*`` state dicts are converted on load.
"""
import re

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from timm.layers import GroupNorm1, SqueezeExcite

from ..family import FamilySpec, register_family
from ..layers import ConvBN, Residual
from .base import EfficientBackbone


class FFN(nn.Sequential):
    """1x1 ConvBN - ReLU - 1x1 ConvBN (zero-initialised BN), (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.pw1 = ConvBN(dim, hidden_dim)
        self.act = nn.ReLU()
        self.pw2 = ConvBN(hidden_dim, dim, bn_weight_init=0)


class SHSA(nn.Module):
    """Single-head self-attention over the first ``pdim`` channels; the rest pass through.

    (N, dim, H, W) -> (N, dim, H, W); attention is global over the H*W tokens.
    """

    def __init__(self, dim, qk_dim, pdim):
        super().__init__()
        self.scale = qk_dim ** -0.5
        self.qk_dim, self.dim, self.pdim = qk_dim, dim, pdim
        self.pre_norm = GroupNorm1(pdim)
        self.qkv = ConvBN(pdim, qk_dim * 2 + pdim)
        self.proj = nn.Sequential(nn.ReLU(), ConvBN(dim, dim, bn_weight_init=0))

    def forward(self, x):
        B, _, H, W = x.shape
        x1, x2 = torch.split(x, [self.pdim, self.dim - self.pdim], dim=1)
        q, k, v = self.qkv(self.pre_norm(x1)).flatten(2).split([self.qk_dim, self.qk_dim, self.pdim], dim=1)
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
        x1 = (v @ attn.transpose(-2, -1)).reshape(B, self.pdim, H, W)
        return self.proj(torch.cat([x1, x2], dim=1))

    def attention_probs(self, x):
        """The attention of ``forward(x)``, recomputed from the projections: ``(probs (N, 1, HW, HW),
        values (N, 1, HW, pdim), query_hw, key_hw, image_hw)``, all three (H, W)."""
        _, _, H, W = x.shape
        qkv = self.qkv(self.pre_norm(x[:, :self.pdim])).flatten(2)
        q, k, v = qkv.split([self.qk_dim, self.qk_dim, self.pdim], dim=1)
        probs = (q.transpose(1, 2) @ k * self.scale).softmax(dim=-1)
        return probs[:, None], v.transpose(1, 2)[:, None], (H, W), (H, W), (H, W)


class SHViTBlock(nn.Module):
    """Residual dw 3x3 ConvBN, residual SHSA (type 's') or nothing (type 'i'), residual FFN."""

    def __init__(self, dim, qk_dim, pdim, block_type, drop_path=0.0):
        super().__init__()
        self.conv = Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim, bn_weight_init=0), drop_path)
        self.mixer = Residual(SHSA(dim, qk_dim, pdim), drop_path) if block_type == 's' else nn.Identity()
        self.ffn = Residual(FFN(dim, dim * 2), drop_path)

    def forward(self, x):
        return self.ffn(self.mixer(self.conv(x)))


class PatchMerging(nn.Module):
    """1x1 ConvBN (4x expand) - ReLU - dw 3x3 stride-2 ConvBN - ReLU - SE - 1x1 ConvBN.

    (N, dim, H, W) -> (N, out_dim, ceil(H / 2), ceil(W / 2)).
    """

    def __init__(self, dim, out_dim):
        super().__init__()
        hidden = dim * 4
        self.conv1 = ConvBN(dim, hidden)
        self.act = nn.ReLU()
        self.conv2 = ConvBN(hidden, hidden, 3, 2, 1, groups=hidden)
        self.se = SqueezeExcite(hidden, 0.25)
        self.conv3 = ConvBN(hidden, out_dim)

    def forward(self, x):
        return self.conv3(self.se(self.act(self.conv2(self.act(self.conv1(x))))))


def _conv_ffn(dim):
    """Residual dw 3x3 ConvBN followed by a residual FFN (used around patch merging)."""
    return nn.Sequential(Residual(ConvBN(dim, dim, 3, 1, 1, groups=dim)), Residual(FFN(dim, dim * 2)))


@MODELS.register_module()
class SHViT(EfficientBackbone):
    """SHViT backbone.

    Args:
        arch (str | dict): ``'s1'``, ``'s2'``, ``'s3'``, ``'s4'`` or a dict with keys
            ``embed_dims``, ``depths``, ``partial_dims`` (3 values each) and optionally ``qk_dims``
            (default 16) and ``block_types`` (default ``('i', 's', 's')``).
        in_channels (int): input channels. Default 3.
        out_indices (Sequence[int]): stages to output; default all three (strides 16, 32, 64).
        frozen_stages (int): -1 none, 0 the stem, i the stem and stages 1..i.
        norm_eval (bool): keep BatchNorm layers in eval mode while training.
        with_cp (bool): activation checkpointing of each block while training.
        drop_path_rate (float): stochastic depth, rising linearly over the SHViT blocks.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads the authors'
            release (or a timm / mmdet file) strictly, see :func:`effvit_mm.checkpoint.load_pretrained`.

    Input (N, in_channels, H, W), any H, W; outputs a tuple of (N, embed_dims[i], ~H / 2**(4+i),
    ~W / 2**(4+i)) for i in ``out_indices``.
    """
    arch_settings = {
        's1': dict(embed_dims=[128, 224, 320], depths=[2, 4, 5], partial_dims=[32, 48, 68]),
        's2': dict(embed_dims=[128, 308, 448], depths=[2, 4, 5], partial_dims=[32, 66, 96]),
        's3': dict(embed_dims=[192, 352, 448], depths=[3, 5, 5], partial_dims=[48, 75, 96]),
        's4': dict(embed_dims=[224, 336, 448], depths=[4, 7, 6], partial_dims=[48, 72, 96]),
    }
    arch_defaults = dict(qk_dims=[16, 16, 16], block_types=['i', 's', 's'])

    def __init__(self, arch='s4', in_channels=3, out_indices=(0, 1, 2), frozen_stages=-1,
                 norm_eval=False, with_cp=False, drop_path_rate=0.0, init_cfg=None):
        super().__init__(arch, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        dims, depths = self.arch['embed_dims'], self.arch['depths']

        c = dims[0]
        self.patch_embed = nn.Sequential(
            ConvBN(in_channels, c // 8, 3, 2, 1), nn.ReLU(),
            ConvBN(c // 8, c // 4, 3, 2, 1), nn.ReLU(),
            ConvBN(c // 4, c // 2, 3, 2, 1), nn.ReLU(),
            ConvBN(c // 2, c, 3, 2, 1))

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            layers = [] if i == 0 else [_conv_ffn(dims[i - 1]), PatchMerging(dims[i - 1], dim), _conv_ffn(dim)]
            layers += [SHViTBlock(dim, self.arch['qk_dims'][i], self.arch['partial_dims'][i],
                                  self.arch['block_types'][i], dpr.pop(0)) for _ in range(depth)]
            self.add_module(f'blocks{i + 1}', nn.Sequential(*layers))
        self._freeze_stages()

    @property
    def stages(self):
        return [getattr(self, f'blocks{i + 1}') for i in range(self.num_stages)]


def shvit_from_timm(state_dict):
    """timm 1.0 ``shvit_*`` names -> the SHViT authors' names (``patch_embed``, ``blocks1..3``).

    timm splits each stage into ``downsample`` (5 modules) + ``blocks``; the authors keep the
    downsample as the first three entries of ``blocks2`` / ``blocks3``. Authors' keys pass unchanged.
    """
    def stage_key(m):
        stage, part, idx, rest = int(m[1]), m[2], int(m[3]), m[4]
        if part == 'blocks':
            return f'blocks{stage + 1}.{idx + (3 if stage > 0 else 0)}.{rest}'
        # downsample: 0,1 -> .0.{0,1}; 2 -> .1 (patch merging); 3,4 -> .2.{0,1}
        where = {0: '0.0', 1: '0.1', 2: '1', 3: '2.0', 4: '2.1'}[idx]
        return f'blocks{stage + 1}.{where}.{rest}'

    out = {}
    for key, value in state_dict.items():
        key = re.sub(r'^stem\.', 'patch_embed.', key)
        key = re.sub(r'^stages\.(\d+)\.(blocks|downsample)\.(\d+)\.(.*)$', stage_key, key)
        out[key] = value
    return out


register_family(FamilySpec(
    name='shvit', backbone=SHViT, head='SHViTClsHead',
    signatures={'authors': 'blocks1.0.conv.m.c.weight', 'timm': 'stages.0.blocks.0.conv.m.c.weight'},
    backbone_modules=('patch_embed', 'blocks1', 'blocks2', 'blocks3'),
    classifier_modules={'head': 'head.head', 'head_dist': 'head.dist_head'},
    timm_adapter=shvit_from_timm, timm_models={a: f'shvit_{a}' for a in SHViT.arch_settings},
    attention=(SHSA,),
    paper={('s1', 224): (6.3e6, 241e6), ('s2', 224): (11.4e6, 366e6), ('s3', 224): (14.2e6, 601e6),
           ('s4', 256): (16.5e6, 986e6)}))
