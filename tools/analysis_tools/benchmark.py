"""Throughput and latency of effvit_mm models beside timm's and the authors', in one process.

    python tools/analysis_tools/benchmark.py shvit:s4 swiftformer:l1 litv2:s --timm --threads 2 --batch 16
    python tools/analysis_tools/benchmark.py shvit:s4 --timm --peers mobilevitv2_100 --preset shvit-cpu
    python tools/analysis_tools/benchmark.py shvit:s4 --features --shape 512 --batch 1 --peers fastvit_sa12   # latency
    python tools/analysis_tools/benchmark.py configs/mask_rcnn_shvit_s4_coco.py --batch 1    # backbone+neck, 1333x800
    python tools/analysis_tools/benchmark.py litv2:s --external authors=/path/ref.py:cls_model:s
    python tools/analysis_tools/benchmark.py configs/mask_rcnn_shvit_s4_coco.py --whole --threads 2   # end to end
    python tools/analysis_tools/benchmark.py configs/retinanet_shvit_s4_coco.py --whole --precisions fp32 int8

``--whole``: detection / segmentation configs timed end to end, batch 1 at the test size (1333x800,
512x512), from the uint8 image to the final data sample: mmdet / mmseg eager (the anchor), the deploy form
in PyTorch and each of ``--backends`` (exported folders; OpenVINO at each of ``--precisions``), with each
call split into backbone + neck, heads and pre / post-processing; the final score threshold is set so that
``--candidates`` class scores pass (see effvit_mm/analysis/latency.py).

What is timed: a ``family:arch`` spec is the variant's ImageNet classifier (``configs/<family>_<arch>_in1k.py``,
logits, at its test crop: SHViT-S4 256, others 224); a classifier config likewise; a detection or
segmentation config is its backbone + neck (``extract_feat``) at 1333x800 / 512x512. ``--features``
times the backbones alone up to their last stage (timm's ``forward_features``). Modes: ``eval``,
``deploy`` (``switch_to_deploy()``: BatchNorms folded, oneDNN kernels) and the runtimes of the portable
deploy form (``fuse()``, effvit_mm/deployment/runtimes.py): ``compile`` (torch.compile, inductor, freezing=True,
static shapes), ``aot`` (AOTInductor: torch.export, compiled ahead of time with freezing into a .pt2
package, run from Python), ``onnxruntime`` and ``openvino`` (its ONNX export; onnxruntime's thread
spinning off, OpenVINO one stream; both with PyTorch's thread count). ``--timm`` adds timm's model of
each variant timm ships (the family spec's ``timm_models``: SHViT, SwiftFormer; eval, re-parameterized:
"fused", and the fused form in the runtimes asked for), ``--peers`` any timm models (the same),
``--external`` any model built by a Python file (e.g. the authors' code built beside the project; eval,
and that model in the runtimes asked for). Before timing, every entry's outputs are compared
with its eager eval model (``--tol``, scaled as in tools/deployment/export_onnx.py); a
runtime whose package is missing, or that cannot read the model, is left out with one line.

How: all entries of one input size are timed in the same rounds, ``--repeats`` rounds after
``--warmup`` calls, one batch per entry per round in turn, together with the GEMM references
(``--gemm-size``; ``a @ b`` of two square matrices, by torch.mm and, on CPU, by oneDNN; the peak is
the faster; fp16 with ``--amp``), so that noise reaches all alike. Reported: median
images/s, median ms per batch (the latency with ``--batch 1``), multiply-adds per image
(effvit_mm.analysis.mac_count), achieved GFLOP/s = 2 x MACs x img/s and its fraction of the GEMM peak of the same
run, ratios of our entries to the others (vs our eval, vs timm's twin, vs peers / external), and the
fastest backend of each model.
Compare ratios inside one run; absolute figures on a shared machine vary by 10% or more.
Results: a table, and JSON, CSV and Markdown files (``--out`` and beside it). Presets (SHViT paper protocol): ``shvit-gpu`` = CUDA,
batch 256, AMP, deploy; ``shvit-cpu`` = 1 thread, batch 16.
"""
import argparse
import csv
import json
import os.path as osp
import statistics
import tempfile

import torch
from mmengine import mkdir_or_exist

from effvit_mm.analysis.mac_count import macs
from effvit_mm.deployment import BACKENDS
from effvit_mm.analysis.benchmark import (classifier_entries, external_entries, features_entries, gemm_entries, prepare,
                                 time_rounds, timm_entries)
from effvit_mm.models.family import get_family
from effvit_mm.deployment.precision import PRECISIONS, cpu_capabilities, tuned_on
from effvit_mm.deployment.runtimes import RUNTIMES
from effvit_mm.apis.targets import input_shape, parse_spec
PRESETS = {
    'shvit-gpu': dict(device='cuda', batch=256, amp=True, modes=['deploy']),
    'shvit-cpu': dict(device='cpu', batch=16, threads=1),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('models', nargs='+',
                   help='family:arch (shvit:s4, swiftformer:l1, litv2:s), config files or model-zoo names')
    p.add_argument('--features', action='store_true', help='time the backbones only (last stage)')
    p.add_argument('--whole', action='store_true', help='time whole detectors / segmentors end to end')
    p.add_argument('--backends', nargs='*', default=['onnxruntime', 'openvino'], choices=BACKENDS,
                   help='--whole: the exported backends timed beside the eager forms')
    p.add_argument('--precisions', nargs='+', default=['fp32'], choices=PRECISIONS,
                   help='--whole: the precisions OpenVINO is timed at (int8 calibrated on the benchmark image)')
    p.add_argument('--candidates', type=int, default=2000,
                   help="--whole: final score threshold set so that this many class scores pass (0: the configs')")
    p.add_argument('--modes', nargs='+', default=['eval', 'deploy'], choices=['eval', 'deploy', *RUNTIMES],
                   help='ours: eval, deploy, runtimes of the deploy form (timm / peers: the same runtimes)')
    p.add_argument('--tol', type=float, default=1e-3, help='largest scaled output difference from eager')
    p.add_argument('--timm', action='store_true', help="add timm's model of each SHViT / SwiftFormer variant")
    p.add_argument('--peers', nargs='+', default=[], metavar='TIMM_NAME', help='timm models timed beside')
    p.add_argument('--external', nargs='+', default=[], metavar='NAME=FILE.py:FUNC[:ARG,...]',
                   help='models built by FUNC(*ARGS) of a Python file, timed beside (eval and the runtimes)')
    p.add_argument('--preset', choices=sorted(PRESETS), help='SHViT protocol settings (override the options)')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--shape', '--res', type=int, nargs='+', help='input H [W] (default: see above)')
    p.add_argument('--threads', type=int, help='torch CPU threads')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help='fp16 autocast (CUDA)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--gemm-size', type=int, default=2048, help="GEMM reference size (0: none)")
    p.add_argument('--out', default='work_dirs/benchmark.json', help='JSON file; CSV and Markdown are written beside')
    args = p.parse_args()
    if args.preset:
        for k, v in PRESETS[args.preset].items():
            setattr(args, k, v)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error(f'--device {args.device} (or --preset {args.preset}): no CUDA device here; use --device cpu')
    if runtimes(args) and args.device != 'cpu':
        p.error(f'--modes {" ".join(runtimes(args))}: the runtimes are timed on the CPU (--device cpu)')
    if args.amp and not args.device.startswith('cuda'):
        p.error('--amp times fp16 autocast on CUDA; on CPU the models run in fp32 (drop --amp)')
    if args.features and any(parse_spec(m) is None for m in args.models):
        p.error('--features takes family:arch specs only')
    return args


def ours(args, target):
    """Our entries of one target and their input (H, W)."""
    return (features_entries if args.features else classifier_entries)(target, args.modes)


def twins(args, target):
    """timm's model of the same variant (eval and fused), if timm ships it (the family's ``timm_models``)."""
    parsed = parse_spec(target)
    name = get_family(parsed[0]).timm_models.get(parsed[1].lower()) if args.timm and parsed else None
    return timm_entries(name, 'timm', args.features, fused=True, runtimes=runtimes(args)) if name else []


def runtimes(args):
    return [m for m in args.modes if m in RUNTIMES]


def groups(args):
    """[((H, W), [entries]), ...]: our targets with their timm twins, grouped by input size, each group
    with the peers, external models and the GEMM reference."""
    by_shape = {}
    for target in args.models:
        entries, shape = ours(args, target)
        shape = input_shape(args.shape) or shape
        entries += twins(args, target)
        for e in entries:
            e.info['target'] = target
        by_shape.setdefault(shape, []).extend(entries)
    for shape, entries in by_shape.items():
        for name in args.peers:
            entries.extend(timm_entries(name, 'peer', args.features, fused=True, runtimes=runtimes(args)))
        for spec in args.external:
            entries.extend(external_entries(spec, runtimes(args)))
        if args.gemm_size:
            entries.extend(gemm_entries(args.gemm_size, args.device, torch.float16 if args.amp else torch.float32))
    return list(by_shape.items())


def measure(args, shape, entries, workdir):
    """Rows (dicts) of one input size, and {entry: reason} of the runtimes left out."""
    counted = {}  # one count per module: the runtimes of a deploy form share it
    for e in entries:
        if e.role != 'gemm':
            e.model.to(args.device)
            if id(e.model) not in counted:
                counted[id(e.model)] = macs(e.model, shape)
            e.macs = counted[id(e.model)]
    x = torch.randn(args.batch, 3, *shape, device=args.device)
    entries, skipped = prepare(entries, x, workdir, args.tol)
    times = time_rounds(entries, x, args.warmup, args.repeats, args.amp)
    rows = []
    for e in entries:
        sec = statistics.median(times[e.name])
        per_call = 1 if e.role == 'gemm' else args.batch
        row = dict(entry=e.name, role=e.role, mode=e.mode, target=e.info.get('target', ''),
                   input=f'{shape[0]}x{shape[1]}', batch=args.batch, device=args.device,
                   threads=torch.get_num_threads(), precision='amp fp16' if args.amp else 'fp32',
                   img_s=round(per_call / sec, 2) if e.role != 'gemm' else None,
                   ms=round(sec * 1e3, 3), gmacs=round(e.macs / 1e9, 4),
                   gflop_s=round(2 * e.macs * per_call / sec / 1e9, 1), diff=e.info.get('diff'),
                   model=model_of(e))
        rows.append(row)
    peak = max((r['gflop_s'] for r in rows if r['role'] == 'gemm'), default=None)
    for row in rows:
        row['peak_frac'] = round(row['gflop_s'] / peak, 3) if peak else None
        if row['role'] == 'ours':
            row['ratios'] = ratios(row, rows)
        row['fastest'] = row['role'] != 'gemm' and row['img_s'] == max(
            r['img_s'] for r in rows if r['model'] == row['model'])
    return rows, skipped


def model_of(entry):
    """The model an entry times in some backend: our target, or the timm / external model's name."""
    if entry.role == 'ours':
        return entry.info['target']
    return entry.name.split(' ')[0]


def ratios(row, rows):
    """img/s of ``row`` over that of: our eval entry of the same target (for the other modes), its timm
    twins, the peers and the external models."""
    out = {}
    for other in rows:
        same_target = other['target'] == row['target']
        if (other['role'] == 'ours' and same_target and other['mode'] == 'eval' and row['mode'] != 'eval') or \
                (other['role'] == 'timm' and same_target) or other['role'] in ('peer', 'external'):
            out[other['entry']] = round(row['img_s'] / other['img_s'], 3)
    return out


def fastest(rows):
    """Markdown lines: the fastest backend of each model, with its img/s and share of the GEMM peak."""
    lines = ['| model | fastest backend | img/s | of GEMM peak |', '|---|---|---|---|']
    for r in rows:
        if r['fastest']:
            peak = f"{r['peak_frac']:.0%}" if r['peak_frac'] is not None else '-'
            backend = r['entry'][len(r['model']):].strip() or '-'
            lines.append(f"| {r['model']} | {backend} | {r['img_s']:.1f} | {peak} |")
    return lines


def report(rows, skipped):
    header = f"{'entry':44s} {'input':>9s} {'img/s':>9s} {'ms/batch':>9s} {'GMACs':>7s} {'GFLOP/s':>8s} {'peak':>6s}"
    print(header)
    for r in rows:
        peak = f"{r['peak_frac']:.0%}" if r['peak_frac'] is not None else '-'
        img_s = f"{r['img_s']:.2f}" if r['img_s'] is not None else '-'
        print(f"{r['entry']:44s} {r['input']:>9s} {img_s:>9s} {r['ms']:9.2f} {r['gmacs']:7.3f} "
              f"{r['gflop_s']:8.1f} {peak:>6s}")
        for other, ratio in r.get('ratios', {}).items():
            print(f"{'':6s}{ratio:.2f}x {other}")
    print('\n'.join(fastest(rows)))
    for name, reason in skipped.items():
        print(f'not timed: {name}: {reason}')


def markdown(rows, skipped):
    """The ratios (one line per pair), then every entry's figures, as Markdown tables."""
    setting = rows[0]
    lines = [f"{setting['device']}, {setting['threads']} threads, batch {setting['batch']}, {setting['precision']}",
             '', '| ours | vs | ratio |', '|---|---|---|']
    lines += [f"| {r['entry']} | {other} | **{ratio:.2f}x** |" for r in rows for other, ratio in r.get('ratios', {}).items()]
    lines += ['', *fastest(rows)]
    lines += ['', '| entry | input | img/s | ms/batch | GMACs/img | GFLOP/s | of GEMM peak |', '|---|---|---|---|---|---|---|']
    for r in rows:
        img_s = f"{r['img_s']:.1f}" if r['img_s'] is not None else '-'
        peak = f"{r['peak_frac']:.0%}" if r['peak_frac'] is not None else '-'
        lines.append(f"| {r['entry']} | {r['input']} | {img_s} | {r['ms']:.1f} | {r['gmacs']:.3f} | {r['gflop_s']:.0f} | {peak} |")
    lines += [f'\nNot timed: {name}: {reason}' for name, reason in skipped.items()]
    return '\n'.join(lines) + '\n'


def write(rows, skipped, out):
    """``out`` (JSON) and, beside it, the same rows as CSV and Markdown."""
    mkdir_or_exist(osp.dirname(osp.abspath(out)))
    stem = osp.splitext(out)[0]
    with open(out, 'w') as f:
        json.dump(rows, f, indent=2)
    fields = [k for k in rows[0] if k != 'ratios'] + ['ratios']
    with open(stem + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, 'ratios': '; '.join(f'{k}={v}' for k, v in r.get('ratios', {}).items())})
    with open(stem + '.md', 'w') as f:
        f.write(markdown(rows, skipped))
    print(f'written to {out}, {stem}.csv and {stem}.md')


def whole(args):
    """``--whole``: time the configs' whole models, print and write the rows (JSON + Markdown)."""
    from effvit_mm.analysis.latency import markdown, time_whole_models
    try:
        rows = time_whole_models(args.models, args.backends, args.warmup, args.repeats, input_shape(args.shape),
                                 args.candidates or None, precisions=args.precisions)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'error: {error}')
    table = markdown(rows)
    print(table)
    mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    with open(args.out, 'w') as f:
        json.dump(rows, f, indent=2)
    with open(osp.splitext(args.out)[0] + '.md', 'w') as f:
        load = f'{args.candidates} candidates' if args.candidates else "the configs' score thresholds"
        f.write(f'{torch.get_num_threads()} threads, batch 1, {args.repeats} rounds (medians), {load}; CPU '
                f'{tuned_on()["cpu"]} ({", ".join(cpu_capabilities())})\n\n{table}')
    print(f'written to {args.out} and {osp.splitext(args.out)[0]}.md')


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.whole:
        return whole(args)
    try:
        by_shape = groups(args)
    except (FileNotFoundError, ValueError) as error:  # e.g. no test crop to time a config at: one line
        raise SystemExit(f'error: {error}')
    rows, skipped = [], {}
    with tempfile.TemporaryDirectory() as workdir:  # the runtimes' ONNX files
        for shape, entries in by_shape:
            try:
                measured, left_out = measure(args, shape, entries, workdir)
            except ValueError as error:  # an entry whose outputs differ from eager: one line
                raise SystemExit(f'error: {error}')
            rows.extend(measured)
            skipped.update(left_out)
    report(rows, skipped)
    write(rows, skipped, args.out)


if __name__ == '__main__':
    main()
