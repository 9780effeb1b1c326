"""Train a model from an mmdet, mmseg or mmpretrain config (the config's default_scope decides).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

Every run resumes exactly (also from a checkpoint saved inside an epoch), saves a checkpoint and exits
with code 75 on SIGTERM / SIGUSR1, writes its checkpoints atomically and stops at a non-finite loss
(effvit_mm.engine). ``--resume`` alone takes the newest complete training checkpoint of the work dir
(the one last_checkpoint names, else the furthest trained iter_N / epoch_N file; never a best_*.pth)
and says which, as does a job that torchrun restarted (tools/dist_train.sh with MAX_RESTARTS) or Slurm
requeued.
"""
import argparse
import os

from mmengine.config import DictAction

from effvit_mm.checkpoint.atomic import CheckpointWriteError
from effvit_mm.checkpoint.resume import resume_from
from effvit_mm.engine import enable_exact_resume, enable_fault_tolerance
from effvit_mm.engine.config_switches import (RUN_ERRORS, check_amp_device, check_checkpoint_fit, check_data_roots,
                                              check_pretrained, drop_amp_options, enable_amp, enable_auto_scale_lr,
                                              load_config)
from effvit_mm.engine.hooks import NonFiniteLoss
from effvit_mm.engine.launch import run


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file or model-zoo name (tools/misc/model_zoo.py list)')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default work_dirs/<config name>)')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale the lr to the actual batch size')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from CKPT, or from the newest complete checkpoint in the work dir')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, k=v')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def setup(args):
    """The config with the command line applied."""
    cfg = load_config(args.config, args.work_dir, args.cfg_options, args.launcher)
    drop_amp_options(cfg)
    if args.amp:
        enable_amp(cfg)
    check_amp_device(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    # a job that torchrun restarted (tools/dist_train.sh, MAX_RESTARTS) or Slurm requeued goes on from where it was
    restarted = any(int(os.environ.get(k) or 0) > 0 for k in ('TORCHELASTIC_RESTART_COUNT', 'SLURM_RESTART_COUNT'))
    resume = args.resume or ('auto' if restarted else None)
    checkpoint = resume_from(cfg.work_dir, resume) if resume else None
    if checkpoint:
        cfg.resume, cfg.load_from = True, checkpoint
    elif cfg.get('load_from'):
        check_checkpoint_fit(cfg, partial=True)  # mmdet's convention (the heads may differ), in one line
    check_data_roots(cfg, ['train'] + (['val'] if cfg.get('val_cfg') else []))
    check_pretrained(cfg)  # mmengine initialises the weights before resuming, too
    enable_exact_resume(cfg)
    enable_fault_tolerance(cfg)
    return cfg


def main():
    args = parse_args()
    try:
        cfg = setup(args)
    except (FileNotFoundError, ValueError) as error:  # one line, not a traceback
        raise SystemExit(f'error: {error}')
    try:
        run(cfg, 'train')
    except (*RUN_ERRORS, NonFiniteLoss, CheckpointWriteError) as error:  # inside the runner: one line too
        raise SystemExit(f'error: {error}')


if __name__ == '__main__':
    main()
