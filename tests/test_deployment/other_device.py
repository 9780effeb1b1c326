"""A stand-in for a GPU on a machine without one: inside :func:`other_device`, moving a tensor to
``cuda`` (``.to('cuda')``, ``.cuda()``, a factory with ``device='cuda'``) gives an :class:`OtherDeviceTensor`:
its data stay on the CPU, but it says ``cuda:0`` and refuses what a CUDA tensor refuses on the host: an
operation with CPU tensors (other than 0-dim ones) and ``.numpy()``. ``.cpu()`` gives the data back.
Code that runs where mmengine's runner has moved a model (``model.to('cuda')``) is tested with it."""
import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

CUDA = torch.device('cuda', 0)


class OtherDeviceTensor(torch.Tensor):
    """CPU data (``.inner``) that says it is on ``cuda:0`` (module docstring)."""

    @staticmethod
    def __new__(cls, inner):
        return torch.Tensor._make_wrapper_subclass(cls, inner.shape, dtype=inner.dtype, device=CUDA,
                                                   strides=inner.stride(), requires_grad=False)

    def __init__(self, inner):
        self.inner = inner

    def __repr__(self):
        return f'OtherDeviceTensor({self.inner!r})'

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if any(not isinstance(t, OtherDeviceTensor) and t.dim() > 0 for t in tensors):
            raise RuntimeError(f'Expected all tensors to be on the same device, but found at least two devices, '
                               f'cuda:0 and cpu! ({func})')
        out = func(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
        return tree_map(lambda t: OtherDeviceTensor(t) if isinstance(t, torch.Tensor) else t, out)


def _unwrap(t):
    return t.inner if isinstance(t, OtherDeviceTensor) else t


class _Mode(TorchDispatchMode):
    """Moves to ``cuda`` make :class:`OtherDeviceTensor` s, moves to ``cpu`` unwrap them."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        device = kwargs.get('device')
        if device is not None and torch.device(device).type == 'cuda':
            kwargs['device'] = torch.device('cpu')
            out = func(*tree_map(_unwrap, args), **kwargs)
            return tree_map(lambda t: OtherDeviceTensor(t) if isinstance(t, torch.Tensor) else t, out)
        if device is not None and torch.device(device).type == 'cpu' and func is torch.ops.aten._to_copy.default:
            return func(*tree_map(_unwrap, args), **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def other_device():
    """Within the block, ``cuda`` is the stand-in device (module docstring). torch's lazy CUDA start, which
    a move to ``cuda`` calls first, does nothing in the block."""
    import unittest.mock
    with unittest.mock.patch.object(torch.cuda, '_lazy_init', lambda: None), _Mode():
        yield CUDA
