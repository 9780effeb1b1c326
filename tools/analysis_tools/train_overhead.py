"""The time per training iteration that effvit_mm's training hooks add, against mmengine's plain loop.

    python tools/analysis_tools/train_overhead.py configs/shvit_s1_demoimagenet.py --nproc 2 --iters 60
    python tools/analysis_tools/train_overhead.py configs/shvit_s1_demoimagenet.py --cfg-options train_dataloader.batch_size=2
    python tools/analysis_tools/train_overhead.py CONFIG --nproc 2 --tree /path/to/other/effvit_mm/checkout

Each variant trains the config for ``--iters`` iterations in ``--nproc`` processes (torchrun; gloo on a
machine without GPU), ``--rounds`` times, the variants in turn in each round:

- ``mmengine``: the config as it is (mmengine's loop, checkpoint hook and sampler);
- ``effvit_mm``: what ``tools/train.py`` runs (exact resume: seeded samples, the loop that resumes inside
  an epoch, every rank's random states in each checkpoint; fault tolerance: the preemption and
  non-finite-loss checks, atomic checkpoints);
- ``effvit_mm@DIR`` for each ``--tree DIR``: the same with the effvit_mm of another checkout (an older
  release, say).

The time of an iteration is mmengine's logged ``time`` (rank 0, one line an iteration); the first
``--warmup`` iterations of each run are left out. Reported: the median over all runs of a variant and
its ratio to ``mmengine``'s, printed and written to ``--out`` (JSON).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

from mmengine.config import DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file or model-zoo name')
    p.add_argument('--nproc', type=int, default=2, help='processes (torchrun)')
    p.add_argument('--iters', type=int, default=60, help='training iterations a run')
    p.add_argument('--warmup', type=int, default=10, help='iterations of each run left out')
    p.add_argument('--rounds', type=int, default=3, help='runs of each variant, the variants in turn')
    p.add_argument('--tree', action='append', default=[], help='another effvit_mm checkout to time too')
    p.add_argument('--out', default='work_dirs/train_overhead.json', help='JSON file of the results')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    p.add_argument('--worker', help=argparse.SUPPRESS)  # a variant's run, under torchrun
    p.add_argument('--work-dir', help=argparse.SUPPRESS)
    return p.parse_args()


class _Enough(Exception):
    """Raised on every rank after the last timed iteration (ends the run without finishing its epoch)."""


def worker(args):
    """One training run of ``args.worker`` ('mmengine' or 'effvit_mm'), stopped after ``args.iters``."""
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    from effvit_mm.engine import enable_exact_resume, enable_fault_tolerance
    from effvit_mm.engine.config_switches import load_config
    from effvit_mm.engine.launch import run

    @HOOKS.register_module(force=True)
    class StopAfterIterations(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 >= args.iters:
                raise _Enough

    cfg = load_config(args.config, args.work_dir, args.cfg_options, launcher='pytorch')
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [dict(type='StopAfterIterations')]
    cfg.pop('val_cfg', None), cfg.pop('val_dataloader', None), cfg.pop('val_evaluator', None)
    cfg.train_cfg.pop('val_interval', None), cfg.train_cfg.pop('val_begin', None)
    cfg.train_cfg.update({'max_epochs' if 'max_epochs' in cfg.train_cfg else 'max_iters': 10 ** 6})
    if args.worker == 'effvit_mm':
        enable_exact_resume(cfg)
        enable_fault_tolerance(cfg)
    try:
        run(cfg, 'train')
    except _Enough:
        pass


def iteration_times(work_dir, warmup):
    times = []
    for root, _, files in os.walk(work_dir):
        if 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                times += [entry['time'] for entry in map(json.loads, f) if 'time' in entry and entry['step'] > warmup]
    return times


def launch(args, variant, tree, port):
    """Time one run of ``variant`` with the effvit_mm of ``tree``; returns its iteration times (s)."""
    with tempfile.TemporaryDirectory() as work_dir:
        cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={args.nproc}', f'--master_port={port}',
               osp.abspath(__file__), args.config, '--worker', variant, '--work-dir', work_dir, '--iters',
               str(args.iters)]
        cmd += ['--cfg-options', *[f'{k}={v}' for k, v in args.cfg_options.items()]] if args.cfg_options else []
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([tree, os.environ.get('PYTHONPATH', '')]))
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f'error: the {variant} run failed:\n{(result.stdout + result.stderr)[-3000:]}')
        return iteration_times(work_dir, args.warmup)


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    variants = [('mmengine', 'mmengine', ROOT), ('effvit_mm', 'effvit_mm', ROOT)]
    variants += [(f'effvit_mm@{tree}', 'effvit_mm', osp.abspath(tree)) for tree in args.tree]
    times = {name: [] for name, _, _ in variants}
    port = 29600
    for round_ in range(args.rounds):
        for name, variant, tree in variants:
            port += 1
            run_times = launch(args, variant, tree, port)
            if len(run_times) != args.iters - args.warmup:
                raise SystemExit(f'error: the {name} run logged {len(run_times)} timed iterations, not '
                                 f'{args.iters - args.warmup}')
            times[name] += run_times
            median = statistics.median(times[name]) * 1000
            print(f'round {round_ + 1}/{args.rounds}: {name} {median:.1f} ms', flush=True)
    base = statistics.median(times['mmengine'])
    results = dict(config=args.config, cfg_options=args.cfg_options, processes=args.nproc, iterations=args.iters,
                   warmup=args.warmup, rounds=args.rounds, variants={})
    print(f'\n{"variant":<40} {"ms / iteration (median)":>24} {"ratio to mmengine":>18}')
    for name, values in times.items():
        median = statistics.median(values)
        results['variants'][name] = dict(median_ms=round(median * 1000, 2), ratio=round(median / base, 4),
                                         iterations_timed=len(values))
        print(f'{name:<40} {median * 1000:>24.1f} {median / base:>18.3f}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
    print(f'written to {args.out}')


if __name__ == '__main__':
    main()
