"""Deploy mode, in two named steps.

- :func:`fuse` (portable): every module that has ``fuse()`` is replaced by its result, children first
  (BatchNorms and layer scales folded into the convolutions / linears beside them, residual identities
  folded into depthwise convs), and the Conv2d + ReLU / GELU pairs of Sequentials become
  :class:`~.fused.ConvAct` s. It computes with plain ops: the same on any device, exportable (ONNX,
  Core ML, ``torch.compile``).
- :func:`use_cpu_kernels` (optional, CPU): the fused modules call oneDNN's kernels, every ``nn.Linear``
  and remaining zero-padded ``Conv2d`` becomes one (a 1x1 conv then runs as a GEMM), modules with a
  ``use_cpu_kernels()`` method pick their CPU form (HiLo's Hi-Fi windows as matmul-softmax), and
  parameters are made channels-last (the layout the kernels read; convolution outputs follow it).

:func:`switch_to_deploy` runs both on a CPU model; on another device, :func:`fuse` and channels-last.
Outputs equal eval mode's up to float rounding; each step is idempotent.
"""
import torch
import torch.nn as nn

from .fused import ConvAct, LinearAct, fuse_activations

__all__ = ['fuse', 'use_cpu_kernels', 'switch_to_deploy']


def fuse(model):
    """The portable inference form of ``model`` (module docstring), in place; returns it in eval mode."""
    def fuse_children(module):
        for name, child in module.named_children():
            fuse_children(child)
            if hasattr(child, 'fuse'):
                child = child.fuse()
                setattr(module, name, child)
            if isinstance(child, nn.Sequential):
                fuse_activations(child)

    model.eval()
    fuse_children(model)
    return model


def use_cpu_kernels(model):
    """Switch a fused ``model`` to the CPU kernels (module docstring), in place; returns it."""
    def rewrite(module):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                setattr(module, name, LinearAct(child))
            elif type(child) is nn.Conv2d and child.padding_mode == 'zeros' and not isinstance(child.padding, str):
                setattr(module, name, ConvAct(child))
            else:
                rewrite(child)

    rewrite(model)
    for module in model.modules():
        if isinstance(module, (ConvAct, LinearAct)):
            module.onednn = True
        elif hasattr(module, 'use_cpu_kernels'):
            module.use_cpu_kernels()
    return model.to(memory_format=torch.channels_last)


def switch_to_deploy(model):
    """:func:`fuse`, then :func:`use_cpu_kernels` if ``model`` is on the CPU (else channels-last only);
    in place, returns ``model`` in eval mode."""
    fuse(model)
    param = next(model.parameters(), None)
    if param is None or param.device.type == 'cpu':
        return use_cpu_kernels(model)
    return model.to(memory_format=torch.channels_last)
