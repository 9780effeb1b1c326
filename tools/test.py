"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config (the config's default_scope decides).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl] [--show] [--show-dir DIR]
                                           [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os
import os.path as osp

from effvit_mm.runtime import add_common_arguments, check_data_roots, enable_visualization, load_config, run


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file (ours or an authors\' release)')
    p.add_argument('--work-dir', help='where the evaluation log goes (default work_dirs/<config name>)')
    p.add_argument('--out', help='dump the predictions to this pickle file')
    p.add_argument('--show', action='store_true', help='show the predictions in a window')
    p.add_argument('--show-dir', help='draw the predictions into this directory (inside the work dir)')
    p.add_argument('--wait-time', type=float, default=2, help='seconds between shown images')
    args = add_common_arguments(p).parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint} not found')
    try:
        cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    except FileNotFoundError as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show_dir, args.show, args.wait_time)
    if args.out:
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(cfg.test_evaluator, (list, tuple)) \
            else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    try:
        check_data_roots(cfg, ['test'])
    except FileNotFoundError as error:
        raise SystemExit(f'error: {error}')
    run(cfg, 'test')


if __name__ == '__main__':
    main()
