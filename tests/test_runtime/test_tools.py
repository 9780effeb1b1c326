"""tools/train.py, tools/test.py and tools/dist_train.sh on a toy task; safe checkpoint loading."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

import effvit_mm  # noqa: F401  (allow-lists mmengine's checkpoint classes)
from effvit_mm.runtime import check_data_roots

ROOT = Path(__file__).parents[2]
TESTS = ROOT / 'tests'
ENV = dict(os.environ, PYTHONPATH=f'{TESTS}{os.pathsep}{os.environ.get("PYTHONPATH", "")}', PYTHON=sys.executable)
sys.path.insert(0, str(TESTS))
from toy_task import write_config  # noqa: E402


def run(*cmd, timeout=300):
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def weights(path):
    return torch.load(path, map_location='cpu')['state_dict']  # weights_only=True (torch's default)


def test_resume_reaches_the_same_weights(tmp_path):
    full = write_config(tmp_path / 'full.py', tmp_path / 'full')
    run(sys.executable, 'tools/train.py', full)
    broken = write_config(tmp_path / 'broken.py', tmp_path / 'broken')
    run(sys.executable, 'tools/train.py', broken)
    # Interrupted after the iteration-4 checkpoint: later checkpoints never got written.
    for name in ('iter_8.pth', 'iter_12.pth'):
        (tmp_path / 'broken' / name).unlink()
    (tmp_path / 'broken' / 'last_checkpoint').write_text(str(tmp_path / 'broken' / 'iter_4.pth'))
    log = run(sys.executable, 'tools/train.py', broken, '--resume')
    assert re.search(r'resumed epoch: 0, iter: 4', log), log[-2000:]
    assert re.search(r'Iter\(train\) \[\s*5/12\]', log) and not re.search(r'Iter\(train\) \[\s*4/12\]', log)
    expected, got = weights(tmp_path / 'full' / 'iter_12.pth'), weights(tmp_path / 'broken' / 'iter_12.pth')
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key].float(), got[key].float(), atol=1e-6), key


def test_crafted_checkpoint_is_refused(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Payload()}, path)
    with pytest.raises(Exception, match='Weights only load failed|Unsupported global'):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_dist_train_two_cpu_processes_and_test(tmp_path):
    config = write_config(tmp_path / 'dist.py', tmp_path / 'dist', max_iters=4, interval=4)
    result = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2'], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=dict(ENV, PORT=str(29500 + os.getpid() % 1000)))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert (tmp_path / 'dist' / 'iter_4.pth').is_file()
    out = run(sys.executable, 'tools/test.py', config, tmp_path / 'dist' / 'iter_4.pth',
              '--work-dir', tmp_path / 'test')
    assert re.search(r'mse: \d', out)


def test_missing_data_root_is_one_line_error(tmp_path):
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
        type='CocoDataset', data_root=str(tmp_path / 'coco'))))))
    with pytest.raises(FileNotFoundError, match=r'coco \(train set\) not found.*train_dataloader.dataset.data_root'):
        check_data_roots(cfg, ['train'])


def test_train_tool_names_a_missing_data_root(tmp_path):
    result = subprocess.run([sys.executable, ROOT / 'tools/train.py', ROOT / 'configs/mask_rcnn_shvit_s4_coco.py'],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith('error: data root data/coco/ (train set) not found')
