"""LITv2: Fast Vision Transformers with HiLo Attention (NeurIPS 2022).

Paper: https://arxiv.org/abs/2205.13213 ; authors' code: https://github.com/ziplab/LITv2.

A 4x4 patch embedding and four stages at strides 4 / 8 / 16 / 32, all but the last ending with
deformable token merging (DTM, :mod:`effvit_mm.models.layers.dtm`). Stages whose HiLo window
``local_ws`` is 0 (the first two by default) have convolutional-FFN blocks only; the others add HiLo
attention: ``1 - alpha`` of the heads attend within ``ws x ws`` windows (Hi-Fi), ``alpha`` of them
attend to ``ws x ws`` average-pooled keys and values (Lo-Fi); ``ws == 1`` is plain MHSA. Maps whose
size is not a multiple of ``ws`` are zero-padded and cropped back, as the authors' mmdet backbone;
a DTM input of one row or column is zero-padded to two (the only size its 2x2 kernel cannot take),
so that any input down to 1x1 runs, with the same outputs as before for all other sizes.
Module names follow the authors' releases (``patch_embed``, ``layers.I.blocks.J``,
``layers.I.downsample``, output norms ``norm1``..``norm3``), so ``litv2_*.pth`` and their COCO
detectors load as they are.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from timm.layers import DropPath, trunc_normal_

from ..family import FamilySpec, register_family
from ..layers import ConvAct, to_linear_act
from ..layers.dtm import DTM
from .base import EfficientBackbone


class HiLo(nn.Module):
    """HiLo attention on a channels-last map, (N, H, W, C) -> (N, H, W, C), any H, W.

    Hi-Fi: ``num_heads - int(num_heads * alpha)`` heads of self-attention in each ``ws x ws`` window.
    Lo-Fi: the other heads; each query attends to the ``ws x ws`` average-pooled map. The map is
    zero-padded (bottom/right) to a multiple of ``ws`` for both, so that Lo-Fi's queries and pooled
    keys see the padding, and the result is cropped, as in the authors' mmdet backbone (their
    detectors were trained so). ``ws == 1``: all heads Lo-Fi without pooling (standard MHSA). Outputs
    are concatenated Hi-Fi first. ``scaled_dot_product_attention`` computes the authors'
    ``softmax(q k^T * scale) v`` (within 5e-6 in float32, identically in float64), faster and without
    storing the attention matrix for the backward pass (with the CPU kernels Hi-Fi's tiny windows use
    matmul-softmax, see :meth:`use_cpu_kernels`).
    """

    def __init__(self, dim, num_heads, window_size, alpha):
        super().__init__()
        self.ws = window_size
        head_dim = dim // num_heads
        self.scale = head_dim ** -0.5
        self.l_heads = num_heads if window_size == 1 else int(num_heads * alpha)
        self.h_heads = num_heads - self.l_heads
        l_dim, h_dim = self.l_heads * head_dim, self.h_heads * head_dim
        if self.l_heads:
            self.l_q = nn.Linear(dim, l_dim)
            self.l_kv = nn.Linear(dim, l_dim * 2)
            self.l_proj = nn.Linear(l_dim, l_dim)
        if self.h_heads:
            self.h_qkv = nn.Linear(dim, h_dim * 3)
            self.h_proj = nn.Linear(h_dim, h_dim)
        self.hifi_sdpa = True  # see use_cpu_kernels()

    def use_cpu_kernels(self):
        """CPU deploy form (:func:`~effvit_mm.models.layers.use_cpu_kernels`): Hi-Fi attention as
        matmul-softmax. Its windows hold ws*ws (4) tokens, and over thousands of such windows the fused
        kernel's per-call overhead dominates on CPU (measured 12x slower than matmul-softmax at
        LITv2-M's stage 3, batch 16); the fused kernel's benefit, not storing the attention matrix for
        backward, does not apply at inference."""
        self.hifi_sdpa = False

    def hifi(self, x):
        """(N, H, W, C), H and W multiples of ws -> (N, H, W, h_dim): attention within windows."""
        B, H, W, _ = x.shape
        ws, hg, wg = self.ws, H // self.ws, W // self.ws
        qkv = self.h_qkv(x).reshape(B, hg, ws, wg, ws, 3, self.h_heads, -1)
        q, k, v = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, B, hg * wg, self.h_heads, ws * ws, -1)
        if self.hifi_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (N, groups, heads, ws*ws, d)
        else:
            out = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1) @ v
        out = out.reshape(B, hg, wg, self.h_heads, ws, ws, -1).permute(0, 1, 4, 2, 5, 3, 6)
        return self.h_proj(out.reshape(B, H, W, -1))

    def _lofi_qkv(self, x):
        """(N, H, W, C), H and W multiples of ws -> Lo-Fi queries (N, heads, H*W, d), keys and values of
        the ``ws x ws`` average-pooled map (N, heads, h*w, d), and (h, w)."""
        B, H, W, C = x.shape
        q = self.l_q(x).reshape(B, H * W, self.l_heads, -1).transpose(1, 2)
        if self.ws > 1:
            x = F.avg_pool2d(x.permute(0, 3, 1, 2), self.ws).permute(0, 2, 3, 1)
        k, v = self.l_kv(x).reshape(B, -1, 2, self.l_heads, q.shape[-1]).permute(2, 0, 3, 1, 4)
        return q, k, v, tuple(x.shape[1:3])

    def lofi(self, x):
        """(N, H, W, C), H and W multiples of ws -> (N, H, W, l_dim): attention to pooled keys."""
        B, H, W, _ = x.shape
        q, k, v, _ = self._lofi_qkv(x)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale).transpose(1, 2)
        return self.l_proj(out.reshape(B, H, W, -1))

    def forward(self, x):
        _, H, W, _ = x.shape
        x = F.pad(x, (0, 0, 0, -W % self.ws, 0, -H % self.ws))
        outs = ([self.hifi(x)] if self.h_heads else []) + ([self.lofi(x)] if self.l_heads else [])
        return torch.cat(outs, dim=-1)[:, :H, :W]

    @property
    def attention_readable(self):
        """Whether :meth:`attention_probs` has something to read (Lo-Fi heads)."""
        return self.l_heads > 0

    def attention_probs(self, x):
        """The Lo-Fi heads' attention of ``forward(x)`` (x: (N, H, W, C)), recomputed from the
        projections: every token of the map zero-padded to (Hp, Wp), multiples of ``ws``, attends to
        the ``ws x ws`` average-pooled (h, w) map. Returns ``(probs (N, heads, Hp*Wp, h*w), values
        (N, heads, h*w, d), (Hp, Wp), (h, w), (H, W))``; None without Lo-Fi heads."""
        if not self.l_heads:
            return None
        _, H, W, _ = x.shape
        x = F.pad(x, (0, 0, 0, -W % self.ws, 0, -H % self.ws))
        q, k, v, key_hw = self._lofi_qkv(x)
        probs = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return probs, v, tuple(x.shape[1:3]), key_hw, (H, W)


class ConvFFN(nn.Module):
    """fc1 - depthwise 3x3 conv - GELU - fc2 (the authors' ``DWMlp``), (N, H, W, C) -> (N, H, W, C)."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Sequential(OrderedDict(dwconv=nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1,
                                                                 groups=hidden_dim)))
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        nn.init.normal_(self.dwconv.dwconv.weight, 0, (2.0 / 9) ** 0.5)  # the authors' init
        nn.init.zeros_(self.dwconv.dwconv.bias)

    def forward(self, x):
        x = self.dwconv(self.fc1(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(self.act(x))

    def fuse(self):
        """Deploy form: the GELU fused into the depthwise conv; ``forward(x, residual)`` adds the
        residual inside ``fc2`` (:mod:`effvit_mm.models.layers.fused`)."""
        return _ConvFFNDeploy(to_linear_act(self.fc1), ConvAct(self.dwconv.dwconv, 'gelu'), to_linear_act(self.fc2))


class _ConvFFNDeploy(nn.Module):
    """:meth:`ConvFFN.fuse`'s result: ``residual + fc2(GELU(dwconv(fc1(x))))``, (N, H, W, C) -> (N, H, W, C)."""

    def __init__(self, fc1, dwconv, fc2):
        super().__init__()
        self.fc1, self.dwconv, self.fc2 = fc1, dwconv, fc2

    def forward(self, x, residual=None):
        x = self.dwconv(self.fc1(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.fc2(x, residual=residual)


class LITBlock(nn.Module):
    """``x + attn(norm1(x))`` (HiLo, only when ``local_ws > 0``), then ``x + mlp(norm2(x))`` with
    an FFN 4x wide. Channels-last, (N, H, W, C) -> (N, H, W, C). Without attention this is the
    authors' ConvFFNBlock.
    """

    def __init__(self, dim, num_heads, local_ws, alpha, drop_path=0.0):
        super().__init__()
        if local_ws > 0:
            self.norm1 = nn.LayerNorm(dim)
            self.attn = HiLo(dim, num_heads, local_ws, alpha)
        else:
            self.attn = None
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = ConvFFN(dim, 4 * dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        if self.attn is not None:
            x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def fuse(self):
        """Deploy form (``mlp`` already fused): the FFN's residual is added inside its ``fc2``."""
        return _LITBlockDeploy(self)


class _LITBlockDeploy(nn.Module):
    """:meth:`LITBlock.fuse`'s result (eval only, no drop path), (N, H, W, C) -> (N, H, W, C)."""

    def __init__(self, block):
        super().__init__()
        self.attn, self.norm2, self.mlp = block.attn, block.norm2, block.mlp
        if block.attn is not None:
            self.norm1 = block.norm1

    def forward(self, x):
        if self.attn is not None:
            x = x + self.attn(self.norm1(x))
        return self.mlp(self.norm2(x), residual=x)


class LITStage(nn.Module):
    """A container: ``blocks`` (channels-last, at the stage's stride) and ``downsample`` (a DTM that
    doubles the channels and halves H, W for the next stage; ``None`` in the last stage).
    :class:`LITv2` runs them, taking the stage output between the two."""

    def __init__(self, blocks, downsample=None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample


class PatchEmbed(nn.Module):
    """4x4 stride-4 conv + LayerNorm; zero-pads H, W (bottom/right) to multiples of 4.

    (N, C_in, H, W) -> channels-last (N, ceil(H / 4), ceil(W / 4), C).
    """

    def __init__(self, in_channels, dim, patch_size=4):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, patch_size, patch_size)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        p = self.patch_size
        x = F.pad(x, (0, -x.shape[3] % p, 0, -x.shape[2] % p))
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


def _init_linear(m):
    """The authors' initialisation of linear layers: truncated normal (std 0.02), zero bias."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)


@MODELS.register_module()
class LITv2(EfficientBackbone):
    """LITv2 backbone.

    Args:
        arch (str | dict): ``'s'``, ``'m'``, ``'b'`` or a dict with keys ``embed_dims`` (each stage
            twice the previous), ``depths``, ``num_heads`` (one value per stage).
        in_channels (int): input channels. Default 3.
        alpha (float): share of each HiLo layer's heads given to Lo-Fi. Default 0.9.
        local_ws (Sequence[int]): HiLo window per stage; 0: no attention (conv-FFN blocks), 1: plain
            MHSA. Default (0, 0, 2, 1); the authors' "ws4" models use (0, 0, 4, 1).
        out_indices (Sequence[int]): stages to output; default all four (strides 4, 8, 16, 32).
        frozen_stages (int): -1 none, 0 the patch embedding, i also stages 1..i (with their DTM and
            output norms).
        norm_eval (bool): keep BatchNorm layers (in DTM) in eval mode while training.
        with_cp (bool): activation checkpointing of each block while training.
        drop_path_rate (float): stochastic depth, rising linearly over all blocks.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads the authors'
            ``litv2_*.pth`` (all but the output norms ``norm1..3``; ``norm``/``head`` ignored) or a
            detector of theirs strictly, see :func:`effvit_mm.checkpoint.load_pretrained`.

    Input (N, in_channels, H, W), any H, W; outputs a tuple of (N, embed_dims[i], H_i, W_i) for i in
    ``out_indices``, with H_0 = ceil(H / 4) and H_(i+1) = max(H_i // 2, 1) (likewise W): strides
    4..32, odd sizes rounded down as the authors' DTM, a size of 1 kept at 1 (DTM pads it). Outputs
    1..3 pass through LayerNorms ``norm1``..``norm3``, output 0 does not (as the authors).
    """
    arch_settings = {
        's': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
        'm': dict(embed_dims=[96, 192, 384, 768], depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
        'b': dict(embed_dims=[128, 256, 512, 1024], depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32]),
    }

    def __init__(self, arch='s', in_channels=3, alpha=0.9, local_ws=(0, 0, 2, 1),
                 out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, with_cp=False,
                 drop_path_rate=0.0, init_cfg=None):
        super().__init__(arch, out_indices, frozen_stages, norm_eval, with_cp, init_cfg)
        dims, depths, heads = self.arch['embed_dims'], self.arch['depths'], self.arch['num_heads']
        self._check_arch(dims, heads, tuple(local_ws), alpha)

        self.patch_embed = PatchEmbed(in_channels, dims[0])
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.layers = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            blocks = [LITBlock(dim, heads[i], local_ws[i], alpha, drop_path=dpr.pop(0)) for _ in range(depth)]
            self.layers.append(LITStage(blocks, DTM(dim) if i < len(dims) - 1 else None))
        for i in self.out_indices:
            if i > 0:
                self.add_module(f'norm{i}', nn.LayerNorm(dims[i]))
        self.apply(_init_linear)
        self._freeze_stages()

    def _check_arch(self, dims, heads, local_ws, alpha):
        name = type(self).__name__
        if len(local_ws) != len(dims) or min(local_ws) < 0:
            raise ValueError(f'{name}: local_ws {local_ws} needs one window size >= 0 per stage '
                             f'({len(dims)}; 0 for no attention)')
        if any(d % h for d, h in zip(dims, heads)):
            raise ValueError(f'{name}: num_heads {heads} must divide embed_dims {dims}')
        if any(b != 2 * a for a, b in zip(dims, dims[1:])):
            raise ValueError(f'{name}: embed_dims {dims} must double from stage to stage (DTM)')
        if not 0 <= alpha <= 1:
            raise ValueError(f'{name}: alpha={alpha} (the Lo-Fi share of heads) must be in [0, 1]')

    @property
    def stages(self):
        """The stages' blocks (channels-last); each stage's DTM is in ``layers[i].downsample``."""
        return [layer.blocks for layer in self.layers]

    def frozen_modules(self):
        """The patch embedding, the first ``frozen_stages`` stages (blocks and DTM) and their output norms."""
        if self.frozen_stages < 0:
            return []
        norms = [getattr(self, f'norm{i}') for i in self.out_indices if 0 < i < self.frozen_stages]
        return [self.patch_embed, *self.layers[:self.frozen_stages], *norms]

    def downsample(self, i, x):
        return self.layers[i - 1].downsample(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def stage_output(self, i, x):
        return (getattr(self, f'norm{i}')(x) if i > 0 else x).permute(0, 3, 1, 2).contiguous()


register_family(FamilySpec(
    name='litv2', backbone=LITv2, head='LITv2ClsHead',
    signatures={'authors': 'patch_embed.proj.weight'},
    backbone_modules=('patch_embed', 'layers'),
    classifier_modules={'norm': 'backbone.norm3', 'head': 'head.head'},
    dense_only_keys=('norm1', 'norm2', 'norm3'),
    attention=(HiLo,),
    paper={('s', 224): (28e6, 3.7e9), ('m', 224): (49e6, 7.5e9), ('b', 224): (87e6, 13.2e9),
           ('b', 384): (87e6, 39.7e9)}))
