"""Helpers of the export tools (``tools/deployment/export_onnx.py``, ``export_openvino.py``, ``export_aot.py``; what is
exported is built by :mod:`effvit_mm.apis.targets`): checking a runtime's outputs and speed against
PyTorch, and the one flow of the tools that export the deploy form (ONNX export itself:
:mod:`effvit_mm.deployment.onnx_export`).
"""
import argparse
import copy
import statistics
import sys
import time

import torch

from ..apis.targets import build_target, input_shape
from ..models.layers import fuse
from .runtimes import OnnxRuntimeModel, RuntimeUnavailable, as_list

__all__ = ['max_abs_diff', 'scaled_diff', 'compare_onnxruntime', 'compare_runtime', 'print_comparison',
           'export_parser', 'export_deploy_form']


def max_abs_diff(a, b):
    """max |a - b| of two arrays / tensors of one shape (a float)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f'shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def scaled_diff(ref, got):
    """max |ref - got| / max(1, max |ref|): absolute for outputs within [-1, 1], relative to the
    output's largest magnitude beyond."""
    ref = torch.as_tensor(ref)
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    return max_abs_diff(ref, got) / scale


def _median_time(fn, runs):
    for _ in range(2):  # warm-up
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def compare_runtime(model, x, run, runs=5):
    """``run`` (a callable ``x -> [tensor, ...]``, e.g. from :mod:`effvit_mm.deployment.runtimes`) against ``model`` in
    PyTorch on ``x``.

    Returns dict: ``diffs`` (max abs diff per output), ``scaled`` (:func:`scaled_diff` per output),
    ``torch_ips`` / ``runtime_ips`` (images/s, median of ``runs`` after two warm-up runs; None if
    ``runs`` is 0)."""
    got = run(x)
    with torch.no_grad():
        ref = as_list(model(x))
    if len(ref) != len(got):
        raise ValueError(f'{len(ref)} PyTorch outputs vs {len(got)} runtime outputs')
    res = dict(diffs=[max_abs_diff(r, g) for r, g in zip(ref, got)],
               scaled=[scaled_diff(r, g) for r, g in zip(ref, got)], torch_ips=None, runtime_ips=None)
    if runs > 0:
        with torch.no_grad():
            res['torch_ips'] = x.shape[0] / _median_time(lambda: model(x), runs)
        res['runtime_ips'] = x.shape[0] / _median_time(lambda: run(x), runs)
    return res


def print_comparison(res, names, tol, runs, batch, runtime, reference='PyTorch'):
    """Print the diff per output of a :func:`compare_runtime` result and one summary line (OK / FAIL,
    both runtimes' images/s); returns whether every scaled diff is within ``tol``."""
    for name, d, s in zip(names, res['diffs'], res['scaled']):
        print(f'  {name}: max abs diff {d:.3g} (scaled {s:.3g})')
    worst = max(res['scaled'])
    speed = 'not timed (--runs 0)' if runs <= 0 else \
        f'{reference} {res["torch_ips"]:.1f} img/s, {runtime} {res["runtime_ips"]:.1f} img/s (CPU, batch ' \
        f'{batch}, {torch.get_num_threads()} threads, median of {runs})'
    print(f'{"OK" if worst <= tol else "FAIL"}: max scaled diff {worst:.3g} (tol {tol:g}); {speed}')
    return worst <= tol


def compare_onnxruntime(model, x, path, runs=5, threads=None):
    """:func:`compare_runtime` of the ONNX file ``path`` in onnxruntime (CPUExecutionProvider), both with
    ``threads`` intra-op threads (default: PyTorch's current number; PyTorch's is restored after); the
    runtime's images/s as ``ort_ips``."""
    before = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        res = compare_runtime(model, x, OnnxRuntimeModel(path), runs)
    finally:
        torch.set_num_threads(before)
    res['ort_ips'] = res.pop('runtime_ips')
    return res


def export_parser(doc, suffix):
    """The command line the export tools share (``tools/deployment/export_onnx.py``, ``export_openvino.py``,
    ``export_aot.py``): what to export, the output file (ending with ``suffix``), weights, input size,
    the comparison's timing, threads and tolerance."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('target', metavar='CONFIG_NAME_OR_SPEC')
    p.add_argument('out', metavar=f'OUT{suffix}')
    p.add_argument('--checkpoint')
    p.add_argument('--partial-checkpoint', action='store_true', help='load what fits the model, skip the rest')
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W]')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--runs', type=int, default=5, help='timed runs of each runtime (0: no timing)')
    p.add_argument('--threads', type=int, help="threads of both runtimes (default: PyTorch's)")
    p.add_argument('--tol', type=float, default=1e-4)
    p.suffix = suffix
    return p


def export_deploy_form(parser, argv, save, load, runtime, written):
    """The flow of a tool that exports the deploy form (``parser`` from :func:`export_parser`): build the
    target, fold it into its portable deploy form (:func:`~effvit_mm.models.layers.fuse`),
    ``save(deployed, x, output_names, out)``, load the file with ``load(out)`` (a callable
    ``x -> [tensor, ...]``) and compare it with the eval model in PyTorch on one random batch. ``written``
    describes the file(s) in the report. Returns the exit code; bad input, or a runtime that cannot take
    the model, exits with one line."""
    args = parser.parse_args(argv)
    if not args.out.endswith(parser.suffix):
        parser.error(f'OUT must end with {parser.suffix}: {args.out}')
    if args.shape and len(args.shape) > 2:
        parser.error('--shape takes H [W]')
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        target = build_target(args.target, args.checkpoint, args.partial_checkpoint, shape=input_shape(args.shape))
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        sys.exit(f'error: {error}')
    deployed = copy.deepcopy(target.module)
    fuse(deployed if target.kind == 'backbone' else deployed.model.backbone)
    x = torch.randn(args.batch, 3, *target.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = as_list(deployed(x))
    names = ['logits'] if target.kind == 'classifier' else [f'feat{i}' for i in range(len(outputs))]
    try:
        save(deployed, x, names, args.out)
        run = load(args.out)
    except RuntimeUnavailable as error:
        sys.exit(f'error: {error}')
    print(f'exported {args.target} (deploy form) at {args.batch}x3x{target.shape[0]}x{target.shape[1]} to '
          f'{args.out} ({written})')
    res = compare_runtime(target.module, x, run, runs=args.runs)
    return 0 if print_comparison(res, names, args.tol, args.runs, args.batch, runtime, 'PyTorch (eval)') else 1
