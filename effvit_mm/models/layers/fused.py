"""Convolutions and linear layers with their activation and residual add, the modules deploy mode
leaves (:mod:`.deploy`).

They compute with ``F.conv2d`` / ``F.linear`` and element-wise ops (portable: any device, exportable)
until :func:`~.deploy.use_cpu_kernels` sets ``onednn``: then, on CPU, ``ConvAct`` / ``LinearAct`` call
oneDNN's fused kernels (:mod:`.onednn`), which apply the ReLU / GELU, or the residual add, while the
output tile is still in cache instead of in a second pass over memory (oneDNN's GEMM is also faster
than ``addmm`` at these shapes). Where the kernels cannot serve (CUDA, no oneDNN, not float32, autograd
recording the ops, e.g. Grad-CAM on a deployed model, or tracing / exporting / compiling) the plain ops
run. The two agree within float rounding.

:func:`fuse_activations` turns the Conv2d + ReLU / GELU pairs of an ``nn.Sequential`` into ``ConvAct`` s;
:class:`ResidualConv` is ``x + body(x)`` with the add fused into ``body``'s last convolution.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .onednn import conv_pointwise, linear_pointwise, onednn_available

__all__ = ['ConvAct', 'LinearAct', 'ResidualConv', 'fuse_activations', 'to_conv_act', 'to_linear_act']

_ACTS = {nn.ReLU: 'relu', nn.GELU: 'gelu'}
_EAGER_ACTS = {'relu': F.relu, 'gelu': F.gelu}
_MKLDNN = onednn_available()


def _use_onednn(module, x):
    """oneDNN's fused kernels: switched on (``module.onednn``), CPU float32, no autograd, not being traced /
    exported / compiled (those see the plain ops, which exporters translate and compilers fuse themselves)."""
    weight = module.weight
    return (module.onednn and _MKLDNN and x.device.type == 'cpu' and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling())


def _eager_tail(y, act, residual):
    if act:
        y = _EAGER_ACTS[act](y)
    return y if residual is None else y + residual


class ConvAct(nn.Module):
    """``act(conv(x))``, or ``conv(x) + residual`` (no activation then), of an existing ``Conv2d``.

    Shapes: those of ``conv``; ``residual`` has the output's shape. ``act``: None, 'relu' or 'gelu'
    (exact, erf-based, as ``nn.GELU()``). ``onednn``: run oneDNN's kernel on CPU (module docstring).
    """

    def __init__(self, conv, act=None, onednn=False):
        super().__init__()
        self.onednn = onednn
        if conv.padding_mode != 'zeros' or isinstance(conv.padding, str):
            raise ValueError('ConvAct: only explicit zero padding is supported')
        self.weight = conv.weight
        self.bias = conv.bias if conv.bias is not None else nn.Parameter(
            torch.zeros(conv.out_channels, device=conv.weight.device, dtype=conv.weight.dtype))
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups, self.act = list(conv.dilation), conv.groups, act
        self.pointwise = (conv.kernel_size == (1, 1) and self.stride == [1, 1] and self.padding == [0, 0]
                          and conv.groups == 1)

    def extra_repr(self):
        return (f'{self.weight.shape[1] * self.groups}, {self.weight.shape[0]}, kernel_size='
                f'{tuple(self.weight.shape[2:])}, stride={tuple(self.stride)}, groups={self.groups}, act={self.act}')

    def forward(self, x, residual=None):
        if residual is not None and self.act:
            raise ValueError('ConvAct: a residual add after an activation is not fused')
        if not _use_onednn(self, x):
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
            return _eager_tail(y, self.act, residual)
        if self.pointwise and x.is_contiguous(memory_format=torch.channels_last):
            # a 1x1 conv of a channels-last map is a GEMM over its (N, H, W, C) rows; oneDNN's matmul
            # runs it 10-20% faster than its convolution at these models' shapes
            rows = x.permute(0, 2, 3, 1)
            res = residual.permute(0, 2, 3, 1) if residual is not None else None
            return linear_pointwise(rows, self.weight.flatten(1), self.bias, self.act, res).permute(0, 3, 1, 2)
        return conv_pointwise(x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                              self.act, residual)


class LinearAct(nn.Module):
    """``act(linear(x))``, or ``linear(x) + residual``, of an existing ``nn.Linear``; (..., in) -> (..., out).
    ``act``: None, 'relu' or 'gelu' (exact); ``onednn``: as :class:`ConvAct`."""

    def __init__(self, linear, act=None, onednn=False):
        super().__init__()
        self.weight, self.bias, self.act, self.onednn = linear.weight, linear.bias, act, onednn

    def extra_repr(self):
        return f'in_features={self.weight.shape[1]}, out_features={self.weight.shape[0]}, act={self.act}'

    def forward(self, x, residual=None):
        if residual is not None and self.act:
            raise ValueError('LinearAct: a residual add after an activation is not fused')
        if not _use_onednn(self, x):
            return _eager_tail(F.linear(x, self.weight, self.bias), self.act, residual)
        return linear_pointwise(x, self.weight, self.bias, self.act, residual)


def to_linear_act(module):
    """``module`` (an ``nn.Linear`` or a ``LinearAct``) as a ``LinearAct``."""
    if isinstance(module, LinearAct):
        return module
    if isinstance(module, nn.Linear):
        return LinearAct(module)
    raise TypeError(f'to_linear_act: expected a Linear, got {type(module).__name__}')


def to_conv_act(module, act=None):
    """``module`` (a ``Conv2d`` or an activation-free ``ConvAct``) as a ``ConvAct`` with ``act``."""
    if isinstance(module, ConvAct) and module.act is None:
        module.act = act
        return module
    if isinstance(module, nn.Conv2d):
        return ConvAct(module, act)
    raise TypeError(f'to_conv_act: expected a Conv2d, got {type(module).__name__}')


class ResidualConv(nn.Module):
    """``x + body(x)`` where ``body`` is a Sequential whose last layer is a convolution: the add runs
    inside that convolution (:class:`ConvAct`). Shapes: (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, body):
        super().__init__()
        *layers, last = body
        self.body = nn.Sequential(*layers)
        self.last = to_conv_act(last)

    def forward(self, x):
        return self.last(self.body(x), residual=x)


def fuse_activations(seq):
    """Replace, in the ``nn.Sequential`` ``seq``, each ``Conv2d`` followed by ``nn.ReLU`` or exact
    ``nn.GELU`` (``Identity`` layers between them, e.g. folded BatchNorms, are skipped) by one ``ConvAct``
    (the activation becomes an ``Identity``). In place; returns ``seq``."""
    names = [n for n, m in seq._modules.items() if not isinstance(m, nn.Identity)]
    for a, b in zip(names, names[1:]):
        conv, act = seq._modules[a], seq._modules[b]
        kind = _ACTS.get(type(act))
        if kind and isinstance(conv, nn.Conv2d) and getattr(act, 'approximate', 'none') == 'none':
            seq._modules[a] = ConvAct(conv, kind)
            seq._modules[b] = nn.Identity()
    return seq
