"""Timing helpers for ``tools/analysis_tools/benchmark.py``: what is timed (entries), each entry's check against eager,
interleaved timing rounds and the machine's fp32 GEMM peak (multiply-adds: :mod:`effvit_mm.analysis.mac_count`).

Every entry of one input size is timed in the same rounds (one batch each per round, in turn), with the
GEMM reference as one more entry, so that machine noise reaches all of them alike and the ratios of one
run are comparable; absolute figures from a shared machine are not.
"""
import contextlib
import copy
import importlib.util
import os.path as osp
import time
from dataclasses import dataclass, field

import torch
from mmengine.config import Config

from ..apis.targets import Call, build_backbone, build_target, imagenet_config, parse_spec, test_crop
from ..deployment.export_tools import scaled_diff
from ..deployment.runtimes import RUNTIMES, RuntimeUnavailable, as_list, build_runtime
from ..models.layers import fuse, switch_to_deploy
from ..models.layers.onednn import linear_pointwise, onednn_available

__all__ = ['Entry', 'classifier_entries', 'features_entries', 'timm_entries', 'external_entries',
           'gemm_entries', 'prepare', 'time_rounds']


@dataclass
class Entry:
    """One timed thing: ``model(x)`` for an (N, 3, H, W) input, or, for the GEMM reference, a
    callable of no argument (``flops`` per call then)."""
    name: str
    model: object
    role: str  # 'ours', 'timm', 'peer', 'external' or 'gemm'
    mode: str = 'eval'  # 'eval', 'deploy' (timm: fused) or a runtime of the deploy form
    macs: int = 0  # multiply-adds per image (per call for 'gemm')
    info: dict = field(default_factory=dict)


def _mode_entries(target, model, modes, wrap):
    """Our entries of ``model`` (eval mode) in ``modes``, each timed as ``wrap(model)`` (e.g. the logits of
    a classifier): 'eval' as is, 'deploy' a deployed copy (:func:`~effvit_mm.models.layers.switch_to_deploy`),
    a runtime (:data:`~effvit_mm.deployment.runtimes.RUNTIMES`) a copy in the portable deploy form
    (:func:`~effvit_mm.models.layers.fuse`; the CPU form's channels-last parameters slow inductor's code
    down, e.g. 0.8x for SwiftFormer-XS) in that runtime (built by :func:`prepare`). The eval model is every
    entry's reference."""
    reference, forms = wrap(model).eval(), {}

    def form(mode):
        kind = 'deploy' if mode == 'deploy' else 'portable'
        if kind not in forms:
            make = switch_to_deploy if kind == 'deploy' else fuse
            forms[kind] = wrap(make(copy.deepcopy(model))).eval()
        return forms[kind]

    return [Entry(f'{target} {mode}', reference if mode == 'eval' else form(mode), 'ours', mode,
                  info=dict(reference=reference)) for mode in modes]


def classifier_entries(target, modes):
    """Entries of a spec (its ImageNet config, :func:`~effvit_mm.apis.targets.imagenet_config`) or config:
    classifiers whole (logits), detectors / segmentors as backbone + neck. Returns (entries, (H, W));
    (H, W) is the test crop, or the dense default size."""
    built = build_target(imagenet_config(target) if parse_spec(target) else target, warn=False)
    return _mode_entries(target, built.model, modes, built.module.around), built.shape


def features_entries(spec, modes):
    """Entries of a ``family:arch`` backbone alone, last stage only (a feature extractor). Returns
    (entries, (H, W)), (H, W) the test crop of the variant's ImageNet config."""
    model = build_backbone(spec, out_indices=(-1, ))
    return _mode_entries(spec, model, modes, lambda m: m), test_crop(Config.fromfile(imagenet_config(spec)))


def timm_entries(name, role, features=False, fused=False, runtimes=()):
    """timm's ``name`` (random weights), eval mode; with ``fused`` also re-parameterized
    (``timm.utils.reparameterize_model``, timm's own deploy form) and that form in each of ``runtimes``
    (built by :func:`prepare`). The eval model is every entry's reference."""
    import timm
    from timm.utils.model import reparameterize_model
    try:
        model = timm.create_model(name, pretrained=False).eval()
    except RuntimeError as e:
        raise ValueError(f"timm has no model '{name}': {e}") from None
    wrap = (lambda m: Call(m, 'forward_features')) if features else (lambda m: m)
    reference = wrap(model)
    out = [Entry(f'timm:{name} eval', reference, role, info=dict(reference=reference))]
    if fused:
        fused_model = wrap(reparameterize_model(copy.deepcopy(model))).eval()
        out += [Entry(f'timm:{name} fused{" " + rt if rt else ""}', fused_model, role, rt or 'deploy',
                      info=dict(reference=reference)) for rt in ('', *runtimes)]
    return out


def external_entries(spec, runtimes=()):
    """``NAME=FILE.py:FUNC[:ARG,...]``: ``FUNC(*ARGS)`` from a Python file outside the project (e.g. the
    authors' code built beside it) in eval mode, as is, and in each of ``runtimes`` (built by
    :func:`prepare`). The eval model is every entry's reference."""
    name, sep, target = spec.partition('=')
    path, _, call = target.partition(':')
    func, _, args = call.partition(':')
    if not sep or not path.endswith('.py') or not func:
        raise ValueError(f"--external '{spec}': expected NAME=FILE.py:FUNC[:ARG,...]")
    if not osp.isfile(path):
        raise FileNotFoundError(f"--external '{spec}': no file {path}")
    module_spec = importlib.util.spec_from_file_location(f'external_{name}', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    model = getattr(module, func)(*[a for a in args.split(',') if a]).eval()
    return [Entry(f'{name}{" " + rt if rt else ""}', model, 'external', rt or 'eval', info=dict(reference=model))
            for rt in ('', *runtimes)]


def gemm_entries(size, device, dtype=torch.float32):
    """The GEMM references, ``a @ b`` of two (size, size) matrices (size**3 multiply-adds per call):
    ``torch.mm`` (MKL on CPU, cuBLAS on CUDA) and, on CPU, oneDNN's matmul (which the deploy-mode
    kernels use). The peak is the faster of them."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    kind = str(dtype).replace('torch.float', 'fp')
    out = [Entry(f'gemm {kind} {size} torch.mm', lambda: torch.mm(a, b), 'gemm', macs=size ** 3)]
    if device == 'cpu' and onednn_available():
        bt = b.t().contiguous()
        out.append(Entry(f'gemm {kind} {size} oneDNN', lambda: linear_pointwise(a, bt, None), 'gemm', macs=size ** 3))
    return out


def prepare(entries, x, workdir, tol):
    """Build the runtime entries (:func:`~effvit_mm.deployment.runtimes.build_runtime`, for ``x``'s shape) and check
    every entry's outputs on ``x`` against its eager reference: ``info['diff']`` = the largest
    :func:`~effvit_mm.deployment.export_tools.scaled_diff`. An entry beyond ``tol`` raises ``ValueError`` (it is not timed);
    a runtime that cannot run is left out. Returns (entries kept, {name: reason left out})."""
    kept, skipped = [], {}
    for e in entries:
        if e.role == 'gemm' or 'reference' not in e.info:
            kept.append(e)
            continue
        try:
            if e.mode in RUNTIMES:
                e.model = build_runtime(e.mode, e.model, x, workdir)
        except RuntimeUnavailable as error:
            skipped[e.name] = str(error)
            continue
        with torch.no_grad():
            ref, got = as_list(e.info['reference'](x)), as_list(e.model(x))
        e.info['diff'] = max(scaled_diff(r, g) for r, g in zip(ref, got))
        if len(ref) != len(got) or e.info['diff'] > tol:
            raise ValueError(f'{e.name}: outputs differ from eager by {e.info["diff"]:.2g} (> {tol}): not timed')
        kept.append(e)
    return kept, skipped


@torch.no_grad()
def time_rounds(entries, x, warmup, repeats, amp=False):
    """Seconds per call of every entry, ``repeats`` interleaved rounds after ``warmup`` calls each.

    Returns {name: [seconds, ...]}. ``amp``: fp16 autocast (CUDA).
    """
    cuda = x.is_cuda
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    autocast = (lambda: torch.autocast('cuda', dtype=torch.float16)) if amp else contextlib.nullcontext

    def call(entry):
        if entry.role == 'gemm':
            return entry.model()
        with autocast():
            return entry.model(x)

    for entry in entries:
        for _ in range(warmup):
            call(entry)
    times = {e.name: [] for e in entries}
    for _ in range(repeats):
        for entry in entries:
            sync()
            start = time.perf_counter()
            call(entry)
            sync()
            times[entry.name].append(time.perf_counter() - start)
    return times
