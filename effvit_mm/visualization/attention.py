"""Attention maps of the attention modules that the families' specs list (``FamilySpec.attention``:
SHViT's single-head attention ``SHSA``, LITv2's HiLo, its Lo-Fi branch).

The probabilities are not read from the modules' ``forward`` (which may use a fused
``scaled_dot_product_attention`` and never form them): a forward pre-hook captures each attention
module's input and the module's ``attention_probs(x)`` recomputes them from its own projections. The
recomputed ``probs @ values``, passed through the module's output projection, equals the module's output
(``tests/test_attention_maps.py`` checks this, so a change of ``forward`` that drifts from it fails).
SwiftFormer's additive attention has no query-key matrix and is not covered (Grad-CAM is).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from ..models.family import families


@dataclass
class Attention:
    """The attention of one module on a batch of B images.

    Attributes:
        probs (Tensor): (B, heads, N_q, N_k), softmax over the keys (SHSA: 1 head).
        values (Tensor): (B, heads, N_k, d), what the probabilities average.
        query_hw (tuple): token grid of the queries, N_q = H * W (HiLo: padded to a multiple of ws).
        key_hw (tuple): grid of the keys, N_k = h * w; each key covers (H / h) x (W / w) queries.
        image_hw (tuple): the part of the query grid that covers the image (top-left; HiLo pads
            bottom / right).
    """
    probs: torch.Tensor
    values: torch.Tensor
    query_hw: tuple
    key_hw: tuple
    image_hw: tuple

    def image_probs(self, head=None):
        """Probabilities of the image's queries, (B, H0 * W0, N_k): averaged over the heads (None)
        or of one head."""
        probs = self.probs.mean(1) if head is None else self.probs[:, head]
        (H, W), (H0, W0) = self.query_hw, self.image_hw
        return probs.unflatten(1, (H, W))[:, :H0, :W0].flatten(1, 2)

    def query_index(self, point, image_size):
        """Index among :meth:`image_probs`' queries of the token under pixel ``point`` = (x, y) of an
        image of ``image_size`` = (height, width)."""
        (H0, W0), (height, width) = self.image_hw, image_size
        row = min(max(int(point[1] * H0 / height), 0), H0 - 1)
        col = min(max(int(point[0] * W0 / width), 0), W0 - 1)
        return row * W0 + col

    def heat_map(self, point, image_size, head=None):
        """Where the query under pixel ``point`` = (x, y) looks: its probabilities over the keys,
        upsampled onto the image, (B, height, width) (bilinear; values are per-key probabilities)."""
        probs = self.image_probs(head)[:, self.query_index(point, image_size)]
        keys = probs.reshape(-1, 1, *self.key_hw)
        tokens = F.interpolate(keys, size=self.query_hw, mode='nearest')[..., :self.image_hw[0], :self.image_hw[1]]
        return F.interpolate(tokens, size=tuple(image_size), mode='bilinear', align_corners=False)[:, 0]


def read_attention(module, x):
    """The :class:`Attention` of an attention module (``FamilySpec.attention``) on its input ``x``; None
    when it has none to read (a HiLo without Lo-Fi heads)."""
    found = module.attention_probs(x)
    return None if found is None else Attention(*found)


def attention_modules(model):
    """{name: module} of the modules of ``model`` whose attention can be read, in order (a HiLo
    without Lo-Fi heads has none)."""
    readable = tuple(cls for family in families() for cls in family.attention)
    return {name: m for name, m in model.named_modules()
            if isinstance(m, readable) and getattr(m, 'attention_readable', True)}


@contextmanager
def capture_attention(model, names=None):
    """Within the ``with`` block, each forward of ``model`` fills the yielded dict with
    ``{module name: Attention}`` for the attention modules (all, or those in ``names``); computed
    without gradients, from the inputs captured by forward pre-hooks."""
    modules = attention_modules(model)
    unknown = set(names or ()) - set(modules)
    if unknown:
        raise ValueError(f'no attention module named {sorted(unknown)}; choose from {list(modules)}')
    maps = {}

    def hook(name, module, args):
        with torch.no_grad():
            maps[name] = read_attention(module, args[0])

    handles = [m.register_forward_pre_hook(partial(hook, name))
               for name, m in modules.items() if not names or name in names]
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def total_variation(p, q):
    """Total-variation distance ``0.5 * sum_k |p_k - q_k|`` between distributions over the last axis,
    in [0, 1] (the share of attention mass that moves); (..., N_k) x (..., N_k) -> (...)."""
    return 0.5 * (p - q).abs().sum(-1)


def attention_disruption(clean, other):
    """{name: (B,)}: per image, the total-variation distance between the head-averaged attention
    distributions of ``clean`` and ``other`` ({name: Attention} of the same model on two batches),
    averaged over all the image's queries. Modules with a single key (a 1 x 1 map, whose attention is
    always 1) are left out."""
    return {name: total_variation(clean[name].image_probs(), other[name].image_probs()).mean(1)
            for name in clean if clean[name].probs.shape[-1] > 1}
