"""Which checkpoint ``--resume`` takes (effvit_mm.checkpoint.resume): the newest complete *training*
checkpoint (last_checkpoint first, then iter_N / epoch_N by the progress they hold), never a weights-only
best checkpoint or a copied-in file unless named, in a work dir of any name, said in one line; and what
killed saves leave behind, removed by one process per machine."""
import re
import sys
from pathlib import Path

import pytest
import torch

from effvit_mm.checkpoint import resume as resume_mod
from effvit_mm.checkpoint.resume import newest_training_checkpoint, remove_partial_writes, resume_from
from effvit_mm.checkpoint.safe_load import safe_load
from test_tools import ENV, free_port, run, weights  # tests/test_runtime/test_tools.py
from toy_task import write_config


def epoch_config(tmp_path, name, stop_after=None):
    """The toy task in an epoch-based loop (8 iterations an epoch, 3 epochs), validated every epoch, with
    a best checkpoint (weights only, as mmengine saves them) and one checkpoint an epoch."""
    base = write_config(tmp_path / f'{name}_base.py', tmp_path / 'unused', stop_after=stop_after)
    path = tmp_path / f'{name}.py'
    path.write_text(f"_base_ = './{base.name}'\n"
                    "train_cfg = dict(_delete_=True, by_epoch=True, max_epochs=3, val_interval=1)\n"
                    "default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1, save_best='mse', rule='less'))\n"
                    "log_processor = dict(by_epoch=True)\n")
    return path


def test_resume_takes_the_training_checkpoint_not_a_newer_best_or_copied_file(tmp_path):
    """epoch_1.pth, then a newer best_mse_epoch_1.pth (no optimiser state) and a newer copy under another
    name, in a work dir whose name holds glob characters: --resume takes epoch_1.pth, says so, trains from
    iteration 9 and ends with the uninterrupted run's weights."""
    run(sys.executable, 'tools/train.py', epoch_config(tmp_path, 'full'), '--work-dir', tmp_path / 'full')
    work = tmp_path / 'run[g]'
    run(sys.executable, 'tools/train.py', epoch_config(tmp_path, 'killed', stop_after=8), '--work-dir', work)
    best = work / 'best_mse_epoch_1.pth'
    assert best.is_file() and 'optimizer' not in safe_load(best)
    (work / 'my_copy.pth').write_bytes((work / 'epoch_1.pth').read_bytes())
    log = run(sys.executable, 'tools/train.py', epoch_config(tmp_path, 'part'), '--work-dir', work, '--resume')
    assert f'resuming from {work}/epoch_1.pth (epoch 1, iteration 8; named by last_checkpoint)' in log, log[-3000:]
    assert 'resumed epoch: 1, iter: 8' in log
    first = re.search(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/8\]', log)
    assert first and first.groups() == ('2', '1')
    expected, got = weights(tmp_path / 'full/epoch_3.pth'), weights(work / 'epoch_3.pth')
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def fake_checkpoint(path, it, epoch, keys=('meta', 'state_dict', 'optimizer', 'message_hub')):
    content = dict(meta=dict(iter=it, epoch=epoch), state_dict={'w': torch.zeros(2)}, optimizer={}, message_hub={})
    torch.save({k: content[k] for k in keys}, path)


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(resume_mod, 'print_log', lambda msg, **kwargs: lines.append(msg))
    return lines


def test_without_last_checkpoint_the_furthest_trained_iter_or_epoch_file_is_taken(tmp_path, logged):
    """iter_N (a preemption's) and epoch_N compared by the iteration they hold; a truncated newer file is
    passed over in one line; best / copied files never count."""
    fake_checkpoint(tmp_path / 'epoch_2.pth', 16, 2)
    fake_checkpoint(tmp_path / 'iter_20.pth', 20, 2)
    fake_checkpoint(tmp_path / 'epoch_3.pth', 24, 3)
    fake_checkpoint(tmp_path / 'best_mse_epoch_9.pth', 72, 9, keys=('meta', 'state_dict', 'message_hub'))
    fake_checkpoint(tmp_path / 'copy.pth', 99, 9)
    path, meta, how = newest_training_checkpoint(tmp_path)
    assert (Path(path).name, meta['iter'], how) == ('epoch_3.pth', 24, 'the furthest trained iter_N / epoch_N file')
    whole = (tmp_path / 'epoch_3.pth').read_bytes()
    (tmp_path / 'iter_30.pth').write_bytes(whole[:len(whole) // 2])  # a save that did not end, by a non-atomic writer
    assert Path(newest_training_checkpoint(tmp_path)[0]).name == 'epoch_3.pth'
    assert logged == [f'checkpoint {tmp_path}/iter_30.pth is unreadable: passed over']


def test_last_checkpoint_comes_first_and_is_checked(tmp_path, logged):
    fake_checkpoint(tmp_path / 'epoch_1.pth', 8, 1)
    fake_checkpoint(tmp_path / 'epoch_2.pth', 16, 2)
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/moved/epoch_1.pth')  # the work dir was moved
    assert newest_training_checkpoint(tmp_path)[:2] == (str(tmp_path / 'epoch_1.pth'), dict(iter=8, epoch=1))
    whole = (tmp_path / 'epoch_1.pth').read_bytes()
    (tmp_path / 'epoch_1.pth').write_bytes(whole[:-100])
    assert newest_training_checkpoint(tmp_path)[0] == str(tmp_path / 'epoch_2.pth')
    assert len(logged) == 1 and re.fullmatch(
        rf'checkpoint {tmp_path}/epoch_1\.pth, named by last_checkpoint, is unreadable \(.*\): looking for the newest '
        r'iter_N / epoch_N file', logged[0])
    assert resume_from(str(tmp_path), 'auto') == str(tmp_path / 'epoch_2.pth')
    assert logged[-1] == (f'resuming from {tmp_path}/epoch_2.pth (epoch 2, iteration 16; the furthest trained '
                          'iter_N / epoch_N file)')


def test_a_named_file_without_training_state(tmp_path, logged):
    """--resume PATH: weights only (no message hub) is refused in one line with the fix; no optimiser
    state resumes with a warning."""
    weights_only = tmp_path / 'published.pth'
    torch.save(dict(state_dict={'w': torch.zeros(2)}, meta=dict(iter=8, epoch=1)), weights_only)
    with pytest.raises(ValueError, match=re.escape(
            f'--resume {weights_only}: not a training checkpoint (no optimizer, message_hub), a run cannot go on from '
            f'it; to start a new run from its weights, pass --cfg-options load_from={weights_only} instead')):
        resume_from(str(tmp_path), str(weights_only))
    best = tmp_path / 'best.pth'
    fake_checkpoint(best, 8, 1, keys=('meta', 'state_dict', 'message_hub'))
    assert resume_from(str(tmp_path), str(best)) == str(best)
    assert logged == [f'{best} holds no optimiser state: the optimiser starts afresh (not an exact continuation)']


def test_partial_writes_are_removed_by_one_process_a_machine(tmp_path, monkeypatch, logged):
    (tmp_path / 'epoch_2.pth.tmp123').write_bytes(b'partial')
    (tmp_path / 'epoch_3.pth.tmp124').write_bytes(b'partial')
    monkeypatch.setenv('LOCAL_RANK', '1')
    remove_partial_writes(str(tmp_path))
    assert len(list(tmp_path.iterdir())) == 2 and not logged
    monkeypatch.setenv('LOCAL_RANK', '0')
    remove = resume_mod.os.remove
    # another launch's process on a shared file system removes the first file meanwhile
    monkeypatch.setattr(resume_mod.os, 'remove', lambda p: (remove(p), remove(p)) if p.endswith('124') else remove(p))
    remove_partial_writes(str(tmp_path))
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # .ci/run runs it
def test_dist_train_resumes_past_a_partial_write_in_both_processes(tmp_path):
    """Two processes restarted over a work dir that holds a killed save's temporary file."""
    killed = write_config(tmp_path / 'killed.py', tmp_path / 'dist', max_iters=8, interval=4, stop_after=6)
    run('bash', 'tools/dist_train.sh', killed, 2, env=dict(ENV, PORT=str(free_port())))
    config = write_config(tmp_path / 'dist.py', tmp_path / 'dist', max_iters=8, interval=4)
    (tmp_path / 'dist/iter_8.pth.tmp4242').write_bytes(b'partial')
    log = run('bash', 'tools/dist_train.sh', config, 2, '--resume', env=dict(ENV, PORT=str(free_port())))
    assert f'removed {tmp_path}/dist/iter_8.pth.tmp4242' in log and 'resumed epoch: 0, iter: 4' in log
    assert (tmp_path / 'dist/iter_8.pth').is_file() and not list((tmp_path / 'dist').glob('*.tmp*'))
