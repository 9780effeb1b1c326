"""Checkpoints load with torch's weights_only unpickler: mmengine's own and numpy-1 ones do, files
that would run code when unpickled do not; the allow-list holds during a load only."""
import os

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import CheckpointLoader

import effvit_mm  # noqa: F401  (wraps mmengine's checkpoint loader)
from effvit_mm.checkpoint.safe_load import safe_load

REFUSED = 'Weights only load failed|Unsupported global|refusing getattr'


def test_code_running_checkpoint_is_refused(tmp_path):
    marker = tmp_path / 'pwned'

    class Payload:
        def __reduce__(self):
            return os.system, (f'echo pwned > {marker}',)

    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': Payload()}, path)
    with pytest.raises(Exception, match=REFUSED):
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    class Payload:
        def __reduce__(self):
            return getattr, (HistoryBuffer, 'update')

    path = tmp_path / 'evil.pth'
    torch.save({'meta': Payload()}, path)
    with pytest.raises(Exception, match='refusing getattr'):
        safe_load(path)


def test_message_hub_and_numpy_load_safely(tmp_path):
    hub = MessageHub('safe-load-test')
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('eta', np.float64(3.0))
    state = dict(message_hub=hub.state_dict(), arrays=[np.zeros(3, dtype=t) for t in (np.int32, np.float32, bool)])
    path = tmp_path / 'ckpt.pth'
    torch.save(state, path)  # as plain mmengine writes it: HistoryBuffer pickles getattr(HistoryBuffer, 'mean')...
    loaded = safe_load(path)
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 0.5
    assert loaded['message_hub']['runtime_info']['eta'] == 3.0
    assert [a.dtype for a in loaded['arrays']] == [np.int32, np.float32, bool]


def test_numpy1_names_load_safely(tmp_path):
    """numpy 1 pickles name ``numpy.core.multiarray`` (numpy 2: ``numpy._core.multiarray``)."""
    path = tmp_path / 'old.pth'
    torch.save({'scale': np.float64(2.0), 'mean': np.ones(2)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    assert b'numpy._core.multiarray' in data
    path.write_bytes(data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    loaded = safe_load(path)
    assert loaded['scale'] == 2.0 and loaded['mean'].tolist() == [1.0, 1.0]


def test_allow_list_is_not_process_wide(tmp_path):
    """``import effvit_mm`` adds nothing to torch's global allow-list, and a load leaves nothing in it."""
    assert HistoryBuffer not in torch.serialization.get_safe_globals()
    hub = MessageHub('safe-load-scope-test')
    hub.update_scalar('train/loss', 0.5)
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict()), path)
    CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    safe_load(path)
    assert HistoryBuffer not in torch.serialization.get_safe_globals()
    with pytest.raises(Exception, match=REFUSED):
        torch.load(path)
