"""tools/train.py, tools/test.py and tools/dist_train.sh on the toy task (tests/toy_task.py)."""
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effvit_mm.checkpoint.safe_load import safe_load
from toy_task import write_config  # tests/toy_task.py (pytest.ini: pythonpath = tests)

ROOT = Path(__file__).parents[2]
TESTS = ROOT / 'tests'
# This checkout's effvit_mm, whichever checkout the environment's editable install points at.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS), os.environ.get('PYTHONPATH', '')]),
           PYTHON=sys.executable)


def run(*cmd, env=ENV, ok=True):
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, log[-3000:]
    return log


def weights(path):
    return safe_load(path, map_location='cpu')['state_dict']  # weights_only=True


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow  # the default suite kills and resumes real configs bit for bit (test_exact_resume.py)
def test_resume_reaches_the_same_weights(tmp_path):
    full = write_config(tmp_path / 'full.py', tmp_path / 'full', max_iters=12, interval=4)
    run(sys.executable, 'tools/train.py', full)
    killed = write_config(tmp_path / 'killed.py', tmp_path / 'part', max_iters=12, interval=4, stop_after=6)
    run(sys.executable, 'tools/train.py', killed)  # checkpoint at 4, killed at 6
    assert (tmp_path / 'part/iter_4.pth').is_file() and not (tmp_path / 'part/iter_8.pth').exists()
    part = write_config(tmp_path / 'part.py', tmp_path / 'part', max_iters=12, interval=4)
    log = run(sys.executable, 'tools/train.py', part, '--resume')
    assert 'resumed epoch: 0, iter: 4' in log
    assert re.search(r'Iter\(train\) \[\s*5/12\]', log) and not re.search(r'Iter\(train\) \[\s*4/12\]', log)
    expected, got = weights(tmp_path / 'full/iter_12.pth'), weights(tmp_path / 'part/iter_12.pth')
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key].float(), got[key].float(), rtol=0, atol=1e-7), key


def test_checkpoint_without_random_states_resumes_with_a_warning(tmp_path):
    """A checkpoint of an older effvit_mm / plain mmengine (no ``random_states``) still resumes."""
    killed = write_config(tmp_path / 'killed.py', tmp_path / 'part', max_iters=8, interval=4, stop_after=4)
    run(sys.executable, 'tools/train.py', killed)
    checkpoint = safe_load(tmp_path / 'part/iter_4.pth', map_location='cpu')
    assert len(checkpoint.pop('random_states')) == 1  # one process
    torch.save(checkpoint, tmp_path / 'part/iter_4.pth')
    part = write_config(tmp_path / 'part.py', tmp_path / 'part', max_iters=8, interval=4)
    log = run(sys.executable, 'tools/train.py', part, '--resume')
    assert 'the checkpoint holds no random states' in log and 'not an exact continuation' in log
    assert (tmp_path / 'part/iter_8.pth').is_file()


def test_resume_inside_an_epoch_goes_on_from_the_next_batch(tmp_path):
    """An epoch-based loop (8 iterations an epoch) resumed from a checkpoint of iteration 4 trains batches
    5 to 8 of epoch 1, not the whole epoch again (mmengine's own loop would: 20 iterations in all), and
    ends with the uninterrupted run's weights; no warning."""
    write_config(tmp_path / 'toy.py', tmp_path / 'work', interval=4)
    (tmp_path / 'epochs.py').write_text(
        "_base_ = './toy.py'\ntrain_cfg = dict(_delete_=True, by_epoch=True, max_epochs=2, val_interval=2)\n")
    run(sys.executable, 'tools/train.py', tmp_path / 'epochs.py', '--work-dir', tmp_path / 'full')
    (tmp_path / 'part').mkdir()
    (tmp_path / 'part/iter_4.pth').write_bytes((tmp_path / 'full/iter_4.pth').read_bytes())
    log = run(sys.executable, 'tools/train.py', tmp_path / 'epochs.py', '--work-dir', tmp_path / 'part',
              '--resume', tmp_path / 'part/iter_4.pth')
    assert 'resumed epoch: 0, iter: 4' in log and 'not an exact continuation' not in log
    assert re.search(r'Iter\(train\) \[\s*5/16\]', log) and not re.search(r'Iter\(train\) \[\s*4/16\]', log)
    final = safe_load(tmp_path / 'part/iter_16.pth', map_location='cpu')
    assert final['meta']['iter'] == 16 and not (tmp_path / 'part/iter_20.pth').exists()
    expected = weights(tmp_path / 'full/iter_16.pth')
    assert all(torch.equal(expected[k], final['state_dict'][k]) for k in expected)


def test_dist_train_on_two_cpu_processes_then_test(tmp_path):
    """SyncBN in the model: reverted to BatchNorm for the gloo run."""
    config = write_config(tmp_path / 'dist.py', tmp_path / 'dist', max_iters=4, interval=4, sync_bn=True)
    log = run('bash', 'tools/dist_train.sh', config, 2, env=dict(ENV, PORT=str(free_port())))
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # world size 2
    assert re.search(r'Iter\(train\) \[4/4\]', log)
    assert (tmp_path / 'dist/iter_4.pth').is_file()
    out = tmp_path / 'preds.pkl'
    log = run(sys.executable, 'tools/test.py', config, tmp_path / 'dist/iter_4.pth', '--work-dir', tmp_path / 'test',
              '--out', out)
    assert re.search(r'Iter\(test\) \[8/8\]\s+mse: \d', log)
    assert re.search(r'\] 8/8, .* task/s', log)  # the progress bar of tools/test.py
    assert out.is_file()


def test_setup_errors_are_one_line(tmp_path):
    config = write_config(tmp_path / 'toy.py', tmp_path / 'work')
    log = run(sys.executable, 'tools/train.py', config, '--cfg-options', 'train_dataloader.dataset.data_root=nowhere/',
              ok=False)
    assert log.strip().splitlines()[-1] == (
        'error: data root nowhere/ (train set) not found: put the data set there or pass '
        '--cfg-options train_dataloader.dataset.data_root=PATH')
    log = run(sys.executable, 'tools/test.py', tmp_path / 'missing.py', tmp_path / 'missing.pth', ok=False)
    assert log.strip().splitlines()[-1] == f'error: checkpoint {tmp_path}/missing.pth not found'
