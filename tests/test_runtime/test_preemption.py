"""Training that survives preemption and crashes (effvit_mm.engine: ResumableEpochBasedTrainLoop,
PreemptionHook, atomic checkpoints, NonFiniteLossHook), on the demo detector with randomness on (flips,
the proposal samplers, drop path): a run stopped by SIGTERM inside an epoch (1 or 2 processes, 0 or 2
workers), SIGKILLed while writing a checkpoint, out of disk space while saving, or with a rank killed
under torchrun's restarts, and resumed, ends with the weights, optimiser state and logged losses of the
run that was never interrupted, and trains no batch twice. A second signal or the deadline ends a slow
save at once; a NaN loss stops the run in one line."""
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_exact_resume import (ENV, LOG_LINE, ROOT, descendants, free_port, kill, last_checkpoint, logged, max_diff,
                               running, write_config)

from effvit_mm.checkpoint.resume import checkpoint_problem, newest_training_checkpoint
from effvit_mm.checkpoint.safe_load import safe_load

TESTS = ROOT / 'tests'
TEST_ENV = dict(ENV, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS), os.environ.get('PYTHONPATH', '')]))


def start(config, work_dir, nproc=1, workers=0, resume=False, env=None, persistent=False):
    """tools/train.py (tools/dist_train.sh for ``nproc`` > 1) on ``config``: 4 iterations an epoch, with 2
    processes too (1 image an iteration and process)."""
    cmd = (['bash', 'tools/dist_train.sh', str(config), str(nproc)] if nproc > 1 else
           [sys.executable, 'tools/train.py', str(config)]) + ['--work-dir', str(work_dir)]
    cmd += ['--cfg-options', 'randomness.seed=0', f'train_dataloader.num_workers={workers}',
            f'train_dataloader.persistent_workers={persistent and workers > 0}']
    cmd += ['train_dataloader.batch_size=1'] if nproc > 1 else []
    cmd += ['--resume'] if resume else []
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(TEST_ENV, PORT=str(free_port()), **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def iteration(line):
    """The training iteration (1-based, over the run) a log line reports, else None."""
    m = LOG_LINE.search(line)
    return None if m is None else int(m[4]) if m[4] else (int(m[1]) - 1) * int(m[3]) + int(m[2])


def finish(proc, lines=()):
    lines = list(lines) + list(proc.stdout)
    proc.wait(timeout=900)
    return ''.join(lines), proc.returncode


def run_to_end(*args, **kwargs):
    log, code = finish(start(*args, **kwargs))
    assert code == 0, log[-3000:]
    return log


def send(proc, sig=signal.SIGTERM):
    """``sig`` to the run and all its processes, as Slurm signals a job."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def signal_at(config, work_dir, at, nproc=1, workers=0, persistent=False):
    """Start a run and send SIGTERM once the log shows iteration ``at``. Returns (log, exit code)."""
    proc, lines = start(config, work_dir, nproc, workers, persistent=persistent), []
    for line in proc.stdout:
        lines.append(line)
        if (iteration(line) or 0) >= at:
            send(proc)
            break
    return finish(proc, lines)


def faulty(config, name, **backend):
    """``config`` whose checkpoints go through tests/toy_task.py's FaultyAtomicLocalBackend(**backend)."""
    options = ''.join(f', {key}={value!r}' for key, value in backend.items())
    return with_toy_task(config, name, "default_hooks = dict(checkpoint=dict(backend_args=dict("
                         f"backend='faulty_atomic_local'{options})))")


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


def resume_and_compare(config, work, reference, resumed_from, case, nproc=1, workers=0, persistent=False, **facts):
    """Resume the run in ``work`` (``--resume``, auto); check it goes on after iteration ``resumed_from``
    and logs every later iteration once, every later epoch whole (no batch trained twice or skipped), and
    ends as the ``reference`` run (0.0; 12 iterations). Returns the resumed log."""
    total = 12
    log = run_to_end(config, work, nproc=nproc, workers=workers, resume=True, persistent=persistent)
    assert f'iter: {resumed_from}' in log and 'not an exact continuation' not in log, log[-3000:]
    trained = [iteration(line) for line in log.splitlines() if iteration(line)]
    assert trained == list(range(resumed_from + 1, total + 1)), (trained, log[-3000:])
    result = compare(reference, work)
    shutil.rmtree(work)  # checkpoints of 360 MB: the slow checks would take many GB of disk
    print(json.dumps(dict(case=case, processes=nproc, workers=workers, persistent_workers=persistent, **facts,
                          resumed_from=resumed_from, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0 and result['iters'] == total, result
    return log


def sigterm_then_resume(detection, nproc, workers, persistent=False):
    """SIGTERM inside epoch 1 or 2 (so that a whole epoch follows the resumed one), then --resume."""
    config, _, tmp = detection
    reference = two_process_reference(detection) if nproc > 1 else detection[1]
    per_epoch = 4  # 8 images: 2 an iteration with 1 process, 1 an iteration and process with 2
    # The signal follows the log line of iteration `at`; the ranks agree to stop after that iteration, the next
    # or (rarely) the one after: all three inside epoch 1 or 2.
    inside = [k for k in range(1, 2 * per_epoch) if k % per_epoch]
    at = random.choice([k for k in inside if k + 1 in inside and k + 2 in inside])
    work = tmp / f'sigterm_{nproc}_{workers}{"_persistent" if persistent else ""}'
    log, code = signal_at(config, work, at, nproc, workers, persistent)
    assert code == 75 if nproc == 1 else code != 0, log[-3000:]
    stopped = int(re.search(r'SIGTERM received: stopped after iteration (\d+) \(epoch \d+\), saved iter_\1\.pth',
                            log)[1])
    assert at <= stopped < 2 * per_epoch and stopped % per_epoch and (work / f'iter_{stopped}.pth').is_file()
    log = resume_and_compare(config, work, reference, stopped, 'SIGTERM', nproc, workers, persistent, signal_at=at,
                             iterations_trained_again=0)
    assert f'resumed epoch: {(stopped - 1) // per_epoch}, iter: {stopped}' in log


def two_process_reference(detection):
    config, _, tmp = detection
    reference = tmp / 'reference2'
    if not (reference / 'last_checkpoint').exists():
        run_to_end(config, reference, nproc=2)  # 2 iterations an epoch
    return reference


def test_sigterm_inside_an_epoch_saves_that_iteration_and_resumes_exactly(detection):
    """As mmdet's COCO configs load: 2 persistent workers (they keep the batch sampler of their first epoch)."""
    sigterm_then_resume(detection, nproc=1, workers=2, persistent=True)


@pytest.mark.slow
@pytest.mark.parametrize('nproc,workers,persistent', [(1, 0, False), (2, 0, False), (2, 2, True)])
def test_sigterm_then_resume_with_processes_and_workers(detection, nproc, workers, persistent):
    sigterm_then_resume(detection, nproc, workers, persistent)


@pytest.mark.slow
def test_sigterm_in_an_iteration_based_loop_resumes_exactly(tmp_path):
    """The demo segmentor's iteration-based loop (12 iterations, a checkpoint every 4), with 2 workers
    (started when mmengine builds the loop, before any hook runs: they leave the signal to the main
    process from their first sample on)."""
    config = write_config('segmentation', tmp_path)
    reference = tmp_path / 'reference'
    run_to_end(config, reference)
    at = random.choice([2, 3, 5, 6, 7, 9, 10])
    log, code = signal_at(config, tmp_path / 'sigterm', at, workers=2)
    assert code == 75, log[-3000:]
    stopped = int(re.search(r'SIGTERM received: stopped after iteration (\d+), saved iter_\1\.pth', log)[1])
    resume_and_compare(config, tmp_path / 'sigterm', reference, stopped, 'SIGTERM, iteration-based loop (segmentor)',
                       workers=2, signal_at=at, iterations_trained_again=0)


@pytest.mark.slow
def test_kill_while_writing_a_checkpoint_then_resume_auto(detection):
    """SIGKILL while epoch_2.pth is being written (slowly, by tests/toy_task.py's backend): no epoch_2.pth
    is left, only its temporary file, which the resumed run removes; a truncated epoch_3.pth from another
    writer is not taken: --resume takes epoch_1.pth (last_checkpoint names it) and the run ends as the
    uninterrupted one."""
    config, reference, tmp = detection
    work = tmp / 'killed_writing'
    proc, lines, killed = start(faulty(config, 'slow', slow='epoch_2.pth'), work), [], False
    for line in proc.stdout:
        lines.append(line)
        if line.startswith('writing') and line.strip().endswith('epoch_2.pth'):
            time.sleep(0.3)  # some bytes written
            kill(proc.pid)
            killed = True
            break
    log, _ = finish(proc, lines)
    assert killed and not (work / 'epoch_2.pth').exists(), log[-3000:]
    partial = list(work.glob('epoch_2.pth.tmp*'))
    assert partial and not checkpoint_problem(work / 'epoch_1.pth')
    # a truncated newest file, as a non-atomic writer leaves it
    whole = (reference / 'epoch_3.pth').read_bytes()
    (work / 'epoch_3.pth').write_bytes(whole[:len(whole) // 2])
    assert newest_training_checkpoint(work)[0] == str(work / 'epoch_1.pth')
    log = resume_and_compare(config, work, reference, 4, 'SIGKILL while writing epoch_2.pth', killed_at=8,
                             iterations_trained_again=4)
    assert f'resuming from {work}/epoch_1.pth (epoch 1, iteration 4; named by last_checkpoint)' in log
    assert f'removed {partial[0]}, left by a save that was killed before it ended' in log


@pytest.mark.slow
def test_a_full_disk_fails_the_save_in_one_line_and_keeps_the_previous_checkpoint(detection):
    """The write of epoch_2.pth stops half-way with ENOSPC (tests/toy_task.py's backend): the run ends with
    one line, epoch_1.pth stays the newest checkpoint (no partial file, last_checkpoint unchanged), and
    --resume from there ends as the uninterrupted run."""
    config, reference, tmp = detection
    work = tmp / 'full_disk'
    log, code = finish(start(faulty(config, 'full', full='epoch_2.pth'), work))
    last = log.strip().splitlines()[-1]
    assert code == 1 and re.fullmatch(rf'error: could not write {work}/epoch_2\.pth \(No space left on device\): the '
                                      r'previous checkpoints are kept; free some space or choose another --work-dir',
                                      last), log[-3000:]
    assert sorted(p.name for p in work.glob('*.pth*')) == ['epoch_1.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')
    resume_and_compare(config, work, reference, 4, 'disk full while writing epoch_2.pth', killed_at=8,
                       iterations_trained_again=4)


@pytest.mark.slow
@pytest.mark.parametrize('how', ['second signal', 'deadline'])
def test_a_second_signal_or_the_deadline_ends_a_slow_save(detection, how):
    """SIGTERM at iteration 2; the preemption checkpoint (of iteration 3) is written slowly (tests/toy_task.py's
    backend). A second SIGTERM 3 s later, or a deadline of 8 s (an iteration, then the save), ends the process
    at once with 128 + 15, without waiting for the checkpoint, which is never renamed into place."""
    config, _, tmp = detection
    deadline = 8 if how == 'deadline' else 60
    slow = faulty(config, f'slow_{deadline}', slow='.pth')
    slow = with_toy_task(slow, f'deadline_{deadline}',
                         f"custom_hooks = [dict(type='PreemptionHook', deadline={deadline})]")
    proc, lines, signalled = start(slow, tmp / how.replace(' ', '_')), [], None
    for line in proc.stdout:
        lines.append(line)
        if signalled is None and (iteration(line) or 0) >= 2:
            send(proc)
            signalled = time.monotonic()
        if line.startswith('writing'):
            break
    written = lines[-1].split()[-1]
    assert signalled and re.search(r'iter_\d+\.pth$', written), ''.join(lines)[-3000:]
    if how == 'second signal':
        time.sleep(3)
        send(proc)
    log, code = finish(proc, lines)
    took = time.monotonic() - signalled
    assert code == 128 + signal.SIGTERM and took < 20, (code, took, log[-3000:])
    assert not Path(written).exists() and 'received: stopped after' not in log
    print(json.dumps(dict(case=how, exit_code=code, seconds_after_the_first_signal=round(took, 1))))


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


def test_checkpoints_and_last_checkpoint_are_replaced_at_once(tmp_path, monkeypatch):
    """A training run of the toy task: every checkpoint and each update of last_checkpoint is renamed into
    place (os.replace), the file only after its checkpoint; nothing temporary is left."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from toy_task import write_config as toy_config

    from effvit_mm.engine import enable_fault_tolerance
    cfg = Config.fromfile(toy_config(tmp_path / 'toy.py', tmp_path / 'work', max_iters=8, interval=4))
    enable_fault_tolerance(cfg)
    replaced, replace = [], os.replace
    monkeypatch.setattr(os, 'replace', lambda src, dst: (replaced.append(Path(dst).name), replace(src, dst)))
    Runner.from_cfg(cfg).train()
    assert replaced == ['iter_4.pth', 'last_checkpoint', 'iter_8.pth', 'last_checkpoint']
    assert (tmp_path / 'work/last_checkpoint').read_text() == str(tmp_path / 'work/iter_8.pth')
    assert sorted(p.name for p in (tmp_path / 'work').iterdir() if 'tmp' in p.name) == []


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
def test_dist_train_restarts_a_killed_rank_and_finishes_exactly(detection):
    config, _, tmp = detection
    reference = two_process_reference(detection)
    work = tmp / 'restarted'
    proc, lines, killed = start(config, work, nproc=2, env=dict(MAX_RESTARTS='1')), [], None
    for line in proc.stdout:
        lines.append(line)
        if killed is None and (iteration(line) or 0) >= 5:  # inside epoch 2, after epoch_1.pth
            ranks = [p for p in descendants(proc.pid) if b'--launcher' in Path(f'/proc/{p}/cmdline').read_bytes()]
            rank1 = [p for p in ranks if 'LOCAL_RANK=1' in Path(f'/proc/{p}/environ').read_text(errors='ignore')]
            os.kill(rank1[0], signal.SIGKILL)
            killed = iteration(line)
    log, code = finish(proc, lines)
    assert killed and code == 0, log[-3000:]
    resumed = int(re.search(r'resumed epoch: \d+, iter: (\d+)', log)[1])
    result = compare(reference, work)
    shutil.rmtree(work)
    print(json.dumps(dict(case='SIGKILL rank 1, MAX_RESTARTS=1', processes=2, workers=0, killed_at=killed,
                          resumed_from=resumed, iterations_trained_again=killed - resumed, **result)))
    assert result['weights'] == result['optimizer'] == result['losses'] == 0.0, result
    assert not any(map(running, descendants(proc.pid)))


def toy_run(tmp_path, name, extra, *args):
    """tools/train.py on the toy task (12 iterations, a checkpoint every 4) with ``extra`` config lines."""
    from toy_task import write_config as toy_config
    base = toy_config(tmp_path / f'{name}_base.py', tmp_path / 'unused')
    config = tmp_path / f'{name}.py'
    config.write_text(f"_base_ = './{base.name}'\n{extra}\n")
    cmd = [sys.executable, 'tools/train.py', str(config), '--work-dir', str(tmp_path / 'work'), *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=TEST_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_max_keep_ckpts_keeps_the_previous_checkpoint_until_the_new_one_is_written(tmp_path):
    """max_keep_ckpts=1 and SIGKILL while iter_8.pth is written: iter_4.pth is still there (mmengine removes
    it before writing), --resume goes on from it, and the end keeps only iter_12.pth."""
    keep_one = ("default_hooks = dict(checkpoint=dict(max_keep_ckpts=1, backend_args=dict("
                "backend='faulty_atomic_local', slow='iter_8.pth')))")
    proc, killed = toy_run(tmp_path, 'keep_one', keep_one), False
    for line in proc.stdout:
        if line.startswith('writing') and line.strip().endswith('iter_8.pth'):
            kill(proc.pid)
            killed = True
            break
    proc.wait(timeout=60)
    work = tmp_path / 'work'
    assert killed and sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_4.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')
    log, code = finish(toy_run(tmp_path, 'keep_one_resumed', keep_one.replace("'iter_8.pth'", "'none'"), '--resume'))
    assert code == 0 and 'resumed epoch: 0, iter: 4' in log, log[-3000:]
    assert sorted(p.name for p in work.iterdir() if p.suffix == '.pth' or '.tmp' in p.name) == ['iter_12.pth']


def test_a_slow_teardown_after_the_preemption_checkpoint_still_exits_with_the_preemption_code(tmp_path):
    """SIGTERM after iteration 3, a deadline of 2 s and an exit that would take 60 s: the checkpoint is
    saved, and the deadline ends the process with 75 (a requeue), not 128 + 15."""
    from effvit_mm.engine.hooks.preemption_hook import DEADLINE
    assert DEADLINE < 30  # ends before Slurm's default KillWait and torchrun's grace period
    extra = ("custom_hooks = [dict(type='SignalAt', iteration=3), dict(type='SlowExit', seconds=60), "
             "dict(type='PreemptionHook', deadline=2)]")
    started = time.monotonic()
    log, code = finish(toy_run(tmp_path, 'slow_exit', extra))
    assert code == 75 and time.monotonic() - started < 40, (code, log[-3000:])
    assert 'SIGTERM received: stopped after iteration 3, saved iter_3.pth' in log


def test_atomic_writes_make_the_rename_durable(tmp_path, monkeypatch):
    """The file is fsynced before its rename, the folder after it (a power cut keeps the new name)."""
    from effvit_mm.checkpoint import atomic
    synced, fsync = [], os.fsync
    monkeypatch.setattr(atomic.os, 'fsync', lambda fd: (synced.append(os.readlink(f'/proc/self/fd/{fd}')), fsync(fd)))
    replace = os.replace
    monkeypatch.setattr(atomic.os, 'replace', lambda a, b: (synced.append('rename'), replace(a, b)))
    atomic.atomic_write(tmp_path / 'f.pth', lambda f: f.write(b'x'))
    assert synced == [f'{tmp_path}/f.pth.tmp{os.getpid()}', 'rename', str(tmp_path)]


def test_one_reduction_an_iteration_and_random_states_gathered_only_for_checkpoints(tmp_path, monkeypatch):
    """The toy task (12 iterations, a checkpoint every 4) with every hook of tools/train.py: one all_reduce
    an iteration (the preemption and non-finite-loss flags together), the random states gathered for the
    3 checkpoints and the end of the (one) epoch only, and each checkpoint holds the states of its own
    iteration."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    from toy_task import write_config as toy_config

    from effvit_mm.engine import enable_exact_resume, enable_fault_tolerance, stop_flags
    from effvit_mm.engine.exact_resume import get_random_states
    from effvit_mm.engine.hooks import random_state_hook
    cfg = Config.fromfile(toy_config(tmp_path / 'toy.py', tmp_path / 'work', max_iters=12, interval=4))
    enable_exact_resume(cfg)
    enable_fault_tolerance(cfg)
    calls = dict(all_reduce=0, all_gather_object=[])
    monkeypatch.setattr(stop_flags, 'all_reduce', lambda t, op: calls.update(all_reduce=calls['all_reduce'] + 1))
    states_at = {}

    def gather(states):
        calls['all_gather_object'].append(runner.iter)
        states_at[runner.iter] = states
        return [states]

    monkeypatch.setattr(random_state_hook, 'all_gather_object', gather)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert calls == dict(all_reduce=12, all_gather_object=[3, 7, 11, 12])
    for it in (4, 8, 12):
        saved = safe_load(tmp_path / f'work/iter_{it}.pth')['random_states'][0]
        assert torch.equal(saved['torch'], states_at[it - 1]['torch'])
    assert get_random_states().keys() == saved.keys()
