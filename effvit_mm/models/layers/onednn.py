"""One wrapper around each private oneDNN op that the CPU kernel rewrite calls (``torch.ops.mkldnn``,
the kernels torch.compile's CPU backend emits for the same patterns). Their argument lists are
undocumented and may change between torch releases: this module is the only place that spells them.
"""
import torch

__all__ = ['onednn_available', 'linear_pointwise', 'conv_pointwise']


def onednn_available():
    """Whether this torch build has oneDNN and both fused ops."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_convolution_pointwise')
            and hasattr(torch.ops.mkldnn, '_linear_pointwise'))


def linear_pointwise(x, weight, bias, act=None, residual=None):
    """``act(x @ weight^T + bias)`` or ``x @ weight^T + bias + residual`` in one oneDNN kernel;
    (..., in) x (out, in) -> (..., out). ``act``: None, 'relu' or 'gelu' (exact)."""
    op = torch.ops.mkldnn._linear_pointwise
    if residual is None:
        return op(x, weight, bias, act or 'none', [], 'none')
    return op.binary(x, residual, weight, bias, 'add')


def conv_pointwise(x, weight, bias, padding, stride, dilation, groups, act=None, residual=None):
    """``act(conv2d(x))`` or ``conv2d(x) + residual`` in one oneDNN kernel (geometry as lists of two)."""
    op = torch.ops.mkldnn._convolution_pointwise
    geometry = (padding, stride, dilation, groups)
    if residual is None:
        return op(x, weight, bias, *geometry, act or 'none', [], 'none')
    return op.binary(x, residual, weight, bias, *geometry, 'add', 1.0, None, [], None)
