"""GPU acceptance: train a few iterations and test the headline configs with the user's commands,
time the GPU benchmarks, and write one JSON summary (tools/gpu_acceptance.sh installs first).

    python tools/gpu_acceptance.py [--cpu] [--iters N] [--work-dir DIR] [--out FILE]

Runs, on generated data (tools/dataset_converters/generate_data.py), each config's published model and pipeline with
the data set swapped in (classes, data root; no pretrained weights):
- Mask R-CNN and RetinaNet SHViT-S4, fp32 and --amp (RetinaNet reaches the focal loss on CUDA);
- LITv2-S Mask R-CNN as published (AMP);
- LITv2-S Semantic FPN through `tools/dist_train.sh CONFIG 1` (NCCL, SyncBN);
- SHViT-S1 and SwiftFormer-XS classification with --amp (adaptive clipping; distillation from a
  randomly initialised regnety_160 teacher file);
each trained with tools/train.py then evaluated with tools/test.py (small validation sets); and tools/analysis_tools/benchmark.py with
--preset shvit-gpu for SHViT S1-S4 beside timm, LITv2-S / SwiftFormer-L1 in fp32 and AMP.

--cpu: the same on a machine without GPU (fewer iterations, small images, Semantic FPN on 2 gloo
processes); the GPU-only steps (AMP, CUDA benchmarks) are skipped and listed. The summary holds per
step the command, exit code, wall time, training losses (all finite?), median iteration time, peak
GPU memory and test metrics. Exit code 1 if any step failed or a loss was not finite.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COCO_CLASSES = ('rectangle', 'ellipse', 'triangle')
ADE_CLASSES = ('background', 'red_flat', 'green_hstripes', 'blue_vstripes')
IMAGENET_CLASSES = ('red disc', 'green square', 'blue triangle', 'yellow cross', 'magenta disc', 'cyan square')


def coco_config(base, heads, data, scale, iters, batch=2):
    """``base`` (a COCO detection config) on the generated set in ``data``: the set's classes in the
    ``heads`` (model keys), no pretrained backbone, ``iters`` iterations of ``batch`` images at ``scale``."""
    model = dict(backbone=dict(init_cfg=None))
    for key in heads:  # 'roi_head.bbox_head' -> model['roi_head']['bbox_head']['num_classes']
        node = model
        for part in key.split('.'):
            node = node.setdefault(part, {})
        node['num_classes'] = len(COCO_CLASSES)
    return f"""_base_ = [{str(ROOT / 'configs' / base)!r}]
data_root = {str(data / 'coco')!r} + '/'
metainfo = dict(classes={COCO_CLASSES!r})
model = {model!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={scale!r}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={scale!r}, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size={batch}, num_workers=2, dataset=dict(
    data_root=data_root, metainfo=metainfo, pipeline=train_pipeline, indices={iters * batch}))
test_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(
    data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
val_dataloader = val_evaluator = val_cfg = None
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""


def write_configs(folder, data, cpu, iters):
    """The derived configs of every step, as files in ``folder``; {name: path}."""
    scale = (256, 192) if cpu else (1333, 800)
    crop = (64, 64) if cpu else (512, 512)
    ade_scale = (128, 96) if cpu else (2048, 512)
    mask_rcnn = ['roi_head.bbox_head', 'roi_head.mask_head']
    configs = {}
    for name, base, heads in (('mask_rcnn_shvit_s4', 'mask_rcnn_shvit_s4_coco.py', mask_rcnn),
                              ('retinanet_shvit_s4', 'retinanet_shvit_s4_coco.py', ['bbox_head']),
                              ('mask_rcnn_litv2_s', 'mask_rcnn_litv2_s_coco.py', mask_rcnn)):
        configs[name] = folder / f'{name}.py'
        configs[name].write_text(coco_config(base, heads, data, scale, iters))

    configs['fpn_litv2_s'] = folder / 'fpn_litv2_s.py'
    configs['fpn_litv2_s'].write_text(f"""_base_ = [{str(ROOT / 'configs/fpn_litv2_s_demoade20k.py')!r}]
data_root = {str(data / 'ade20k')!r} + '/'
crop_size = {crop!r}
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale={ade_scale!r}, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale={ade_scale!r}, keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=2, dataset=dict(data_root=data_root, pipeline=train_pipeline))
test_dataloader = dict(num_workers=2, dataset=dict(data_root=data_root, pipeline=test_pipeline))
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end={iters}, by_epoch=False)]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
""")

    size = 64 if cpu else 224
    classification = f"""data_root = {str(data / 'imagenet')!r} + '/'
classes = {IMAGENET_CLASSES!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale={size}, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale={size}), dict(type='PackInputs')]
train_dataloader = dict(batch_size=16, num_workers=2, dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline, indices={16 * iters}))
val_dataloader = dict(batch_size=32, num_workers=2, dataset=dict(
    data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
data_preprocessor = dict(num_classes=len(classes))
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
"""
    configs['shvit_s1_cls'] = folder / 'shvit_s1_cls.py'
    configs['shvit_s1_cls'].write_text(f"_base_ = [{str(ROOT / 'configs/shvit_s1_in1k.py')!r}]\n" + classification
                                       + "model = dict(head=dict(num_classes=len(classes), topk=(1, )))\n")
    configs['swiftformer_xs_cls'] = folder / 'swiftformer_xs_cls.py'
    configs['swiftformer_xs_cls'].write_text(
        f"_base_ = [{str(ROOT / 'configs/swiftformer_xs_in1k.py')!r}]\n" + classification
        + "model = dict(head=dict(num_classes=len(classes), topk=(1, )),\n"
        + f"             teacher=dict(checkpoint={str(folder / 'regnety_160_random.pth')!r}, num_classes=len(classes)))\n")
    return configs


def random_teacher(path, num_classes):
    """A randomly initialised timm regnety_160 state dict (the SwiftFormer recipe's teacher)."""
    import timm
    import torch
    if not path.is_file():
        torch.save(timm.create_model('regnety_160', num_classes=num_classes).state_dict(), path)


def newest(pattern_root, pattern):
    found = sorted(pattern_root.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def training_record(work_dir):
    """Losses, iteration times and peak memory from mmengine's scalars.json of the newest run."""
    scalars = newest(work_dir, '*/vis_data/scalars.json')
    rows = [json.loads(line) for line in scalars.read_text().splitlines()] if scalars else []
    rows = [r for r in rows if 'loss' in r]
    losses = [r['loss'] for r in rows]
    times = [r['time'] for r in rows if 'time' in r]
    return dict(losses=losses, losses_finite=bool(losses) and all(math.isfinite(v) for v in losses),
                iter_time_median_s=statistics.median(times[1:] or times) if times else None,
                peak_memory_mb=max((r['memory'] for r in rows if 'memory' in r), default=None))


def test_metrics(work_dir):
    """The metrics mmengine's logger wrote for the newest test run (``<timestamp>/<timestamp>.json``)."""
    log = newest(work_dir, '*/[0-9]*.json')
    if log is None:
        return {}
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return {k: v for row in rows for k, v in row.items() if isinstance(v, (int, float)) and k != 'step'}


class Steps:
    """Runs commands, records each, and remembers failures."""

    def __init__(self, python, env, log_dir):
        self.python, self.env, self.log_dir = python, env, log_dir
        self.records, self.skipped = [], []

    def run(self, name, cmd, **extra):
        start = time.time()
        log = self.log_dir / f"{name.replace('/', '.')}.log"
        with open(log, 'w') as f:
            rc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=self.env, stdout=f, stderr=subprocess.STDOUT).returncode
        record = dict(name=name, cmd=' '.join(str(c) for c in cmd), rc=rc, seconds=round(time.time() - start, 1),
                      log=str(log), **extra)
        if rc:
            record['tail'] = log.read_text()[-2000:]
        self.records.append(record)
        status = 'ok' if rc == 0 else f'FAILED (exit {rc}, see {log})'
        print(f'[acceptance] {name}: {status} in {record["seconds"]} s', flush=True)
        return record

    def train_and_test(self, name, config, work_dir, train_args=(), launcher=None):
        """tools/train.py (or ``launcher``, e.g. dist_train.sh), then tools/test.py on its last checkpoint."""
        cmd = launcher or [self.python, 'tools/train.py', config]
        train = self.run(f'{name}/train', [*cmd, '--work-dir', work_dir, *train_args])
        if train['rc'] == 0:
            train.update(training_record(work_dir))
            last = (work_dir / 'last_checkpoint').read_text().strip()
            test = self.run(f'{name}/test', [self.python, 'tools/test.py', config, last, '--work-dir', work_dir / 'test'])
            if test['rc'] == 0:
                test['metrics'] = test_metrics(work_dir / 'test')

    def ok(self):
        return all(r['rc'] == 0 and r.get('losses_finite', True) for r in self.records)


def environment(cpu):
    import torch
    from mmcv.ops import get_compiling_cuda_version

    from effvit_mm.engine.mmcv_ops import routed_devices
    info = dict(python=platform.python_version(), torch=torch.__version__, torch_cuda=torch.version.cuda,
                mmcv_cuda_ops=get_compiling_cuda_version(), routed_devices=list(routed_devices()),
                cpu_count=os.cpu_count(), mode='cpu' if cpu else 'gpu')
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cpu', action='store_true', help='run on CPU, skipping (and listing) the GPU-only steps')
    p.add_argument('--iters', type=int, help='training iterations per run (default 8 on GPU, 2 on CPU)')
    p.add_argument('--work-dir', type=Path, default=ROOT / 'work_dirs/gpu_acceptance')
    p.add_argument('--out', type=Path, help='summary JSON (default WORK_DIR/summary.json)')
    p.add_argument('--install-seconds', type=float, help='install time to record (tools/gpu_acceptance.sh)')
    args = p.parse_args()
    import torch
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit('error: no CUDA device visible to torch; pass --cpu to run the CPU variant')
    cpu, iters = args.cpu, args.iters or (2 if args.cpu else 8)
    work, python = args.work_dir.resolve(), sys.executable
    for sub in ('configs', 'logs', 'runs'):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHON=python, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])),
               PYTHONUNBUFFERED='1')
    steps = Steps(python, env, work / 'logs')
    start = time.time()

    data = work / 'data'  # the generators of tools/dataset_converters/generate_data.py, in this process
    from effvit_mm.datasets import make_ade20k, make_coco, make_imagenet
    make_coco(data / 'coco', num_train=32, num_val=4, img_size=(256, 192))
    make_ade20k(data / 'ade20k', num_train=32, num_val=4, num_classes=len(ADE_CLASSES))
    make_imagenet(data / 'imagenet', num_classes=len(IMAGENET_CLASSES), num_train_per_class=16, num_val_per_class=2)
    configs = write_configs(work / 'configs', data, cpu, iters)
    random_teacher(work / 'configs/regnety_160_random.pth', len(IMAGENET_CLASSES))
    runs = work / 'runs'

    precisions = [('fp32', [])] + ([] if cpu else [('amp', ['--amp'])])
    for model in ('mask_rcnn_shvit_s4', 'retinanet_shvit_s4'):
        for precision, flags in precisions:
            steps.train_and_test(f'{model}_{precision}', configs[model], runs / f'{model}_{precision}', flags)
    if cpu:  # as published it trains with AmpOptimWrapper, which needs a GPU
        steps.train_and_test('mask_rcnn_litv2_s_fp32', configs['mask_rcnn_litv2_s'], runs / 'mask_rcnn_litv2_s_fp32',
                             ['--cfg-options', 'optim_wrapper.type=OptimWrapper'])
        steps.skipped += ['mask_rcnn_shvit_s4_amp', 'retinanet_shvit_s4_amp', 'mask_rcnn_litv2_s_amp (as published; '
                          'trained in fp32 instead)']
    else:
        steps.train_and_test('mask_rcnn_litv2_s_amp', configs['mask_rcnn_litv2_s'], runs / 'mask_rcnn_litv2_s_amp')
    procs = 2 if cpu else 1  # CPU: gloo; GPU: NCCL with SyncBN
    steps.train_and_test(f'fpn_litv2_s_dist{procs}', configs['fpn_litv2_s'], runs / 'fpn_litv2_s',
                         launcher=['bash', 'tools/dist_train.sh', configs['fpn_litv2_s'], procs])
    amp = [] if cpu else ['--amp']
    for model in ('shvit_s1_cls', 'swiftformer_xs_cls'):
        steps.train_and_test(f'{model}_{"fp32" if cpu else "amp"}', configs[model], runs / model, amp)
    if cpu:
        steps.skipped += ['shvit_s1_cls_amp', 'swiftformer_xs_cls_amp', 'benchmark shvit-gpu', 'benchmark fp32 / amp']

    bench = work / 'bench'
    if cpu:  # the tool's code path, tiny
        steps.run('benchmark/cpu', [python, 'tools/analysis_tools/benchmark.py', 'shvit:s1', '--timm', '--batch', 2, '--repeats', 1,
                                    '--warmup', 1, '--gemm-size', 256, '--device', 'cpu', '--out', bench / 'cpu.json'])
    else:
        steps.run('benchmark/shvit-gpu', [python, 'tools/analysis_tools/benchmark.py', 'shvit:s1', 'shvit:s2', 'shvit:s3', 'shvit:s4',
                                          '--timm', '--preset', 'shvit-gpu', '--out', bench / 'shvit_gpu.json'])
        for precision, flags in (('fp32', []), ('amp', ['--amp'])):
            steps.run(f'benchmark/{precision}', [python, 'tools/analysis_tools/benchmark.py', 'litv2:s', 'swiftformer:l1', '--device',
                                                 'cuda', '--batch', 64, *flags, '--out', bench / f'{precision}.json'])
    for record in steps.records:
        if record['name'].startswith('benchmark/') and record['rc'] == 0:
            out = Path(record['cmd'].split('--out ')[-1])
            record['results'] = json.loads(out.read_text()) if out.is_file() else None

    summary = dict(ok=steps.ok(), environment=environment(cpu), iters=iters, install_seconds=args.install_seconds,
                   seconds=round(time.time() - start, 1), steps=steps.records, skipped=steps.skipped)
    out = args.out or work / 'summary.json'
    out.write_text(json.dumps(summary, indent=1))
    failed = [r['name'] for r in steps.records if r['rc'] or not r.get('losses_finite', True)]
    print(f'[acceptance] {"passed" if summary["ok"] else "FAILED: " + ", ".join(failed)} in {summary["seconds"]} s; '
          f'skipped: {", ".join(steps.skipped) or "none"}; summary: {out}')
    sys.exit(0 if summary['ok'] else 1)


if __name__ == '__main__':
    main()
