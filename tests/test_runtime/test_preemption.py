"""Training that survives preemption and crashes (effvit_mm.engine: ResumableEpochBasedTrainLoop,
PreemptionHook, atomic checkpoints, NonFiniteLossHook), on the demo detector with randomness on (flips,
the proposal samplers, drop path): a run stopped by SIGTERM inside an epoch, or SIGKILLed while writing a
checkpoint, and resumed, ends with the weights, optimiser state and logged losses of the run that was
never interrupted, and trains no batch twice."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_exact_resume import (ENV, ROOT, descendants, free_port, kill, last_checkpoint, logged, max_diff, running,
                               write_config)

from effvit_mm.engine.checkpoints import checkpoint_problem, newest_complete_checkpoint

TESTS = ROOT / 'tests'
TEST_ENV = dict(ENV, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS), os.environ.get('PYTHONPATH', '')]))
ITER = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
OPTIONS = ['randomness.seed=0', 'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']


def start(config, work_dir, nproc=1, options=(), resume=False, env=None):
    cmd = (['bash', 'tools/dist_train.sh', str(config), str(nproc)] if nproc > 1 else
           [sys.executable, 'tools/train.py', str(config)]) + ['--work-dir', str(work_dir)]
    cmd += ['--cfg-options', *OPTIONS, *options] + (['--resume'] if resume else [])
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(TEST_ENV, PORT=str(free_port()), **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def iteration(line):
    m = ITER.search(line)
    return (int(m[1]) - 1) * int(m[3]) + int(m[2]) if m else None


def finish(proc, lines=()):
    lines = list(lines) + list(proc.stdout)
    proc.wait(timeout=900)
    return ''.join(lines), proc.returncode


def run_to_end(*args, **kwargs):
    log, code = finish(start(*args, **kwargs))
    assert code == 0, log[-3000:]
    return log


def signal_at(config, work_dir, at, sig=signal.SIGTERM, nproc=1):
    """Start a run and send ``sig`` to all its processes (as Slurm does) once the log shows iteration
    ``at``. Returns (log, exit code)."""
    proc, lines = start(config, work_dir, nproc), []
    for line in proc.stdout:
        lines.append(line)
        if (iteration(line) or 0) >= at:
            for pid in [proc.pid, *descendants(proc.pid)]:
                os.kill(pid, sig)
            break
    return finish(proc, lines)


def with_toy_task(config, name, extra):
    """A config on top of ``config`` that imports tests/toy_task.py (its test hooks and backends) and adds ``extra``."""
    path = config.parent / f'{name}.py'
    path.write_text(f"_base_ = './{config.name}'\ncustom_imports = dict(imports=['effvit_mm', 'toy_task'], "
                    f"allow_failed_imports=False)\n{extra}\n")
    return path


def compare(reference, work):
    expected, got = last_checkpoint(reference), last_checkpoint(work)
    ref_losses, losses = logged(reference), logged(work)
    return dict(weights=max_diff(expected['state_dict'], got['state_dict']),
                optimizer=max_diff(expected['optimizer'], got['optimizer']),
                losses=max(max_diff(ref_losses[s][0], e) for s in losses for e in losses[s]),
                logged_steps=len(losses), iters=got['meta']['iter'])


@pytest.fixture(scope='module')
def detection(tmp_path_factory):
    """The demo detector's test config (3 epochs of 4 iterations) and its uninterrupted run."""
    tmp = tmp_path_factory.mktemp('preemption')
    config = write_config('detection', tmp)
    reference = tmp / 'reference'
    run_to_end(config, reference)
    return config, reference, tmp


def test_sigterm_inside_an_epoch_saves_that_iteration_and_resumes_exactly(detection):
    config, reference, tmp = detection
    at = random.choice([5, 6, 7, 9, 10])  # inside epoch 2 or 3 (4 iterations an epoch)
    work = tmp / 'sigterm'
    log, code = signal_at(config, work, at)
    assert code == 75, log[-3000:]
    stopped = int(re.search(r'SIGTERM received: stopped after iteration (\d+) \(epoch \d+\), saved iter_\1\.pth', log)[1])
    assert at <= stopped < 12
    log = run_to_end(config, work, resume=True)
    assert f'resumed epoch: {(stopped - 1) // 4}, iter: {stopped}' in log and 'not an exact continuation' not in log
    trained = sorted({iteration(line) for line in log.splitlines() if iteration(line)})
    assert trained == list(range(stopped + 1, 13))  # no batch trained twice
    result = compare(reference, work)
    print(json.dumps(dict(case='SIGTERM', processes=1, workers=0, signal_at=at, resumed_from=stopped, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0 and result['iters'] == 12, result


def test_kill_while_writing_a_checkpoint_then_resume_auto(detection):
    """SIGKILL while epoch_2.pth is being written (slowly, by tests/toy_task.py's backend): no epoch_2.pth
    is left, only its temporary file; a truncated checkpoint from another writer is passed over in one
    line; --resume takes epoch_1.pth and the run ends as the uninterrupted one."""
    config, reference, tmp = detection
    work = tmp / 'killed_writing'
    slow = with_toy_task(config, 'slow', "default_hooks = dict(checkpoint=dict(backend_args=dict(backend='slow_atomic_local')))")
    proc, lines, killed = start(slow, work), [], False
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('writing') and line.strip().endswith('epoch_2.pth'):
            time.sleep(0.3)  # some bytes written
            kill(proc.pid)
            killed = True
            break
    log, _ = finish(proc, lines)
    assert killed and not (work / 'epoch_2.pth').exists(), log[-3000:]
    assert list(work.glob('epoch_2.pth.tmp*')) and not checkpoint_problem(work / 'epoch_1.pth')
    # a truncated newest file, as a non-atomic writer leaves it
    whole = (reference / 'epoch_3.pth').read_bytes()
    (work / 'epoch_3.pth').write_bytes(whole[:len(whole) // 2])
    assert newest_complete_checkpoint(work) == str(work / 'epoch_1.pth')
    log = run_to_end(slow, work, resume=True)
    assert re.search(r'checkpoint .*epoch_3\.pth is unreadable \(.*\): resuming from the previous complete one', log)
    assert 'resumed epoch: 1, iter: 4' in log
    result = compare(reference, work)
    print(json.dumps(dict(case='SIGKILL while writing epoch_2.pth', processes=1, workers=0, resumed_from=4, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0, result


def test_a_nan_loss_stops_the_run_in_one_line(detection):
    config, _, tmp = detection
    work = tmp / 'nan'
    poisoned = with_toy_task(config, 'nan', "custom_hooks = [dict(type='PoisonAt', iteration=6)]")
    log, code = finish(start(poisoned, work))
    assert code == 1
    last = log.strip().splitlines()[-1]
    assert re.fullmatch(r'error: non-finite loss at iteration 6 \(epoch 2\): loss=nan, .*loss_rpn_cls=nan.*; the last '
                        r'good checkpoint is \S+epoch_1\.pth; lower the learning rate or clip gradients, or set '
                        r'custom_hooks NonFiniteLossHook\(allow=True\) to go on', last), last
    assert not (work / 'iter_6.pth').exists()


def test_slurm_script_requeues_after_the_preemption_checkpoint(tmp_path):
    """tools/slurm_train.sh with stand-ins for srun (exits with 75, the code of a preemption checkpoint)
    and scontrol (records its arguments)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text('#!/bin/sh\nexit 75\n')
    (bin_dir / 'scontrol').write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/scontrol_args\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = dict(TEST_ENV, PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_ID='4242', PYTHON=sys.executable)
    run = subprocess.run(['bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py', str(tmp_path / 'w')], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert run.returncode == 75 and (tmp_path / 'scontrol_args').read_text().split() == ['requeue', '4242']
    (bin_dir / 'srun').write_text('#!/bin/sh\nexit 3\n')
    (tmp_path / 'scontrol_args').unlink()
    run = subprocess.run(['bash', 'tools/slurm_train.sh', 'part', 'job', 'cfg.py', str(tmp_path / 'w')], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert run.returncode == 3 and not (tmp_path / 'scontrol_args').exists()  # a failure is not requeued


@pytest.mark.slow
def test_two_processes_sigterm_then_resume(detection):
    config, _, tmp = detection
    reference = tmp / 'reference2'
    run_to_end(config, reference, nproc=2)  # 2 iterations an epoch
    work = tmp / 'sigterm2'
    log, _ = signal_at(config, work, 3, nproc=2)
    stopped = int(re.search(r'SIGTERM received: stopped after iteration (\d+)', log)[1])
    assert (work / f'iter_{stopped}.pth').is_file(), log[-3000:]
    log = run_to_end(config, work, nproc=2, resume=True)
    assert f'iter: {stopped}' in log and 'not an exact continuation' not in log
    result = compare(reference, work)
    print(json.dumps(dict(case='SIGTERM', processes=2, workers=0, signal_at=3, resumed_from=stopped, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0, result


@pytest.mark.slow
def test_dist_train_restarts_a_killed_rank_and_finishes_exactly(detection):
    config, _, tmp = detection
    reference = tmp / 'reference2'
    if not (reference / 'last_checkpoint').exists():
        run_to_end(config, reference, nproc=2)
    work = tmp / 'restarted'
    proc, lines, killed = start(config, work, nproc=2, env=dict(MAX_RESTARTS='1')), [], None
    for line in proc.stdout:
        lines.append(line)
        if killed is None and (iteration(line) or 0) >= 3:
            ranks = [p for p in descendants(proc.pid) if b'--launcher' in Path(f'/proc/{p}/cmdline').read_bytes()]
            rank1 = [p for p in ranks if 'LOCAL_RANK=1' in Path(f'/proc/{p}/environ').read_text(errors='ignore')]
            os.kill(rank1[0], signal.SIGKILL)
            killed = iteration(line)
    log, code = finish(proc, lines)
    assert killed and code == 0, log[-3000:]
    assert 'resumed epoch' in log
    result = compare(reference, work)
    print(json.dumps(dict(case='SIGKILL rank 1, MAX_RESTARTS=1', processes=2, workers=0, killed_at=killed, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0, result
    assert not any(map(running, descendants(proc.pid)))
