"""Evaluate a checkpoint with an mmdet, mmseg or mmpretrain config (the config's default_scope decides).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--show] [--show-dir DIR]
                         [--wait-time S] [--tta] [--partial-checkpoint] [--cfg-options k=v ...]
                         [--launcher none|pytorch|slurm|mpi]
    python tools/test.py CONFIG DIR --deployed [...]

With --deployed, DIR is a folder written by tools/deployment/export_model.py from the same config: its
graphs run in their backend (onnxruntime, OpenVINO, AOTInductor) on the config's test set, evaluated by
the config's metrics (effvit_mm.deployment.DeployedModel); a folder exported from another config is
refused.

A checkpoint that does not fit the config's model (missing, unexpected or reshaped parameters) is
refused in one line; --partial-checkpoint loads what fits and says in one line what it skipped.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from effvit_mm.engine.config_switches import (RUN_ERRORS, check_checkpoint_fit, check_data_roots, dump_predictions,
                                       enable_progress_bar, enable_tta, enable_visualization, load_config)
from effvit_mm.engine.launch import run


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file or model-zoo name (tools/misc/model_zoo.py list)')
    p.add_argument('checkpoint', help='checkpoint file or URL (with --deployed: the exported folder)')
    p.add_argument('--deployed', action='store_true',
                   help='CHECKPOINT is a folder of tools/deployment/export_model.py: evaluate it')
    p.add_argument('--work-dir', help='where the evaluation log goes (default work_dirs/<config name>)')
    p.add_argument('--out', help='dump the predictions: a .pkl file (mmseg: a directory of masks)')
    p.add_argument('--show', action='store_true', help='show the predictions in a window')
    p.add_argument('--show-dir', help='draw the predictions into this directory (mmdet: inside <work_dir>/<timestamp>)')
    p.add_argument('--wait-time', type=float, default=2, help='seconds between shown images')
    p.add_argument('--tta', action='store_true', help='test-time augmentation (tta_model, tta_pipeline)')
    p.add_argument('--partial-checkpoint', action='store_true',
                   help='load the parameters of the checkpoint that fit the model, skip the others')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def setup(args):
    """The config with the command line applied."""
    if args.deployed and args.tta:
        raise ValueError('--tta is not available with --deployed (the exported graphs take one view)')
    if not args.deployed and '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found'
                                + (' (a folder: pass --deployed to test an exported model)'
                                   if osp.isdir(args.checkpoint) else ''))
    cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    if args.deployed:
        from effvit_mm.deployment import use_deployed
        use_deployed(cfg, args.checkpoint)
    else:
        cfg.load_from = args.checkpoint
        check_checkpoint_fit(cfg, args.partial_checkpoint)
    enable_progress_bar(cfg)
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show_dir, args.show, args.wait_time)
    if args.tta:
        enable_tta(cfg)
    if args.out:
        dump_predictions(cfg, args.out)
    check_data_roots(cfg, ['test'])
    return cfg


def main():
    args = parse_args()
    try:
        cfg = setup(args)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    try:
        run(cfg, 'test')
    except RUN_ERRORS as error:  # a checkpoint or data set refused inside the runner: one line too
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
