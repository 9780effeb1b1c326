"""Loading fails loudly and in one line: a file that could run code when unpickled, a truncated file,
a checkpoint of another model (``--partial-checkpoint`` accepts a partial fit on purpose), a data set
empty after filtering, a classifier config whose test pipeline has no size."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.registry import DATASETS, DefaultScope

import effvit_mm  # noqa: F401  (translates the loading errors)
from effvit_mm.checkpoint import CheckpointMismatchError, load_model_checkpoint
from effvit_mm.engine.config_switches import EmptyDatasetError, check_data_roots
from effvit_mm.datasets import make_coco, make_imagenet
from effvit_mm.checkpoint.safe_load import CheckpointFileError
from effvit_mm.apis.targets import test_crop
from toy_task import ToyRegressor, write_config  # tests/toy_task.py (pytest.ini: pythonpath = tests)

ROOT = Path(__file__).parents[2]
TESTS = ROOT / 'tests'
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS), os.environ.get('PYTHONPATH', '')]),
           PYTHONWARNINGS='ignore')


def tool(*cmd, ok=False):
    """Run a tool; returns its stderr, checked to be one ``error:`` line when it fails."""
    result = subprocess.run([sys.executable, *map(str, cmd)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert (result.returncode == 0) == ok, result.stdout[-2000:] + result.stderr[-3000:]
    if not ok:
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith('error: '), result.stderr
    return result.stderr.strip() if not ok else result.stdout


class Payload:
    """Runs ``echo pwned > marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'echo pwned > {self.marker}',)


class Getattr:
    """Unpickles as ``getattr(HistoryBuffer, 'update')``, not one of the statistics mmengine pickles."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, 'update')


@pytest.fixture
def files(tmp_path):
    """A toy checkpoint, its truncated first half, one that would run code, one of another shape."""
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=ToyRegressor().state_dict(), meta={}), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    evil = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=ToyRegressor().state_dict(), meta=Payload(tmp_path / 'pwned')), evil)
    other = dict(ToyRegressor().state_dict(), **{'linear.weight': torch.ones(1, 8), 'head.fc.weight': torch.ones(2)})
    other.pop('bn.running_var')
    wrong = tmp_path / 'wrong.pth'
    torch.save(dict(state_dict=other), wrong)
    return dict(good=good, truncated=truncated, evil=evil, wrong=wrong, marker=tmp_path / 'pwned')


def test_refused_files_raise_one_line(files, tmp_path):
    model = ToyRegressor()
    with pytest.raises(CheckpointFileError) as error:
        load_model_checkpoint(model, str(files['evil']))
    message = str(error.value)
    assert 'posix.system' in message and 'NOT loaded' in message and 'could run code' in message
    assert 'weights_only' not in message and '\n' not in message
    assert not files['marker'].exists()
    with pytest.raises(CheckpointFileError, match=f"{files['truncated']} is truncated.*central directory"):
        load_model_checkpoint(model, str(files['truncated']))
    getter = tmp_path / 'getattr.pth'
    torch.save({'meta': Getattr()}, getter)
    with pytest.raises(CheckpointFileError, match=r'NOT loaded.*refusing getattr'):
        load_model_checkpoint(model, str(getter))


def test_checkpoint_of_another_model_is_refused_unless_partial(files):
    model = ToyRegressor()
    with pytest.raises(CheckpointMismatchError) as error:
        load_model_checkpoint(model, str(files['wrong']))
    assert str(error.value) == (
        f"{files['wrong']} does not fit ToyRegressor: 1 missing (bn.running_var); 1 unexpected (head.fc.weight); "
        '1 of another shape (linear.weight (1, 8) vs (1, 4)); --partial-checkpoint loads only what fits')
    before = model.linear.weight.clone()
    load_model_checkpoint(model, str(files['wrong']), partial=True)
    assert torch.equal(model.linear.weight, before) and torch.equal(model.bn.weight, torch.ones(4))
    with pytest.raises(CheckpointMismatchError, match='fits none of the 7 tensors of Sequential'):
        load_model_checkpoint(nn.Sequential(nn.Linear(4, 1), nn.BatchNorm1d(2)), str(files['wrong']), partial=True)
    state = ToyRegressor().state_dict()
    state.pop('bn.num_batches_tracked')  # absent from some released checkpoints: fine
    torch.save(dict(state_dict={f'module.{k}': v for k, v in state.items()}), files['good'])
    load_model_checkpoint(model, str(files['good']))
    assert torch.equal(model.linear.weight, state['linear.weight'])


@pytest.mark.slow  # about 40 s: .ci/run runs it among its slow checks
def test_tools_refuse_in_one_line(files, tmp_path):
    config = write_config(tmp_path / 'toy.py', tmp_path / 'work')
    message = tool('tools/test.py', config, files['evil'], '--work-dir', tmp_path / 'test')
    assert 'posix.system' in message and 'NOT loaded' in message and 'weights_only' not in message
    assert not files['marker'].exists()
    message = tool('tools/test.py', config, files['wrong'], '--work-dir', tmp_path / 'test')
    assert message.startswith(f"error: {files['wrong']} does not fit ToyRegressor: 1 missing")
    log = tool('tools/test.py', config, files['wrong'], '--work-dir', tmp_path / 'test', '--partial-checkpoint',
               ok=True)
    assert f"partial load of {files['wrong']} into ToyRegressor: 5 of 7 tensors loaded; skipped 1 missing" in log
    assert 'mse:' in log and 'size mismatch' not in log
    message = tool('tools/train.py', config, '--resume', files['truncated'])
    assert message == (f"error: checkpoint {files['truncated']} is truncated, corrupted or not a checkpoint "
                       '(torch: PytorchStreamReader failed reading zip archive: failed finding central directory)')
    message = tool('tools/deployment/export_onnx.py', 'shvit:s1', tmp_path / 'x.onnx', '--checkpoint', files['wrong'])
    assert 'fits none of the' in message and 'SHViT' in message


def test_empty_dataset_says_so(tmp_path):
    make_coco(str(tmp_path / 'coco'), 2, 1, (64, 64), 0, 2)
    check_data_roots(Config(dict(train_dataloader=None)), ['train'])  # installs the check
    dataset = dict(type='CocoDataset', data_root=str(tmp_path / 'coco'), pipeline=[],
                   ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
                   filter_cfg=dict(filter_empty_gt=True))
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(EmptyDatasetError) as error:
        DATASETS.build(dataset)  # COCO's 80 classes, none of them in the generated set
    assert str(error.value) == (
        f"CocoDataset {tmp_path}/coco/annotations/instances_train2017.json is empty after filtering (classes: "
        'person, bicycle, car, motorcycle, ... (80 in all)): do the classes of the config match those of the '
        'annotations?')


def test_test_crop_of_a_pipeline_without_size(tmp_path):
    cfg = Config.fromfile(ROOT / 'configs/shvit_s1_demoimagenet.py')
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'imagenet')
    with pytest.raises(ValueError, match='no CenterCrop / Resize / ResizeEdge .* pass the input size'):
        test_crop(cfg)
    make_imagenet(str(tmp_path / 'imagenet'), 6, 1, 1, 40, 0)
    assert test_crop(cfg) == (40, 40)
