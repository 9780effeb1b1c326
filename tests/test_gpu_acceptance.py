"""tools/gpu_acceptance.sh in its CPU mode (a slow check that .ci/run runs): every step of the GPU acceptance run that a CPU can do,
with the users' commands (train, test, dist_train on 2 gloo processes, benchmark)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.mark.slow  # about 4-5 min: .ci/run runs it after the default suite
def test_acceptance_cpu_mode(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PORT='29537',
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get('PYTHONPATH')])))
    result = subprocess.run(['bash', 'tools/gpu_acceptance.sh', '--cpu', '--work-dir', tmp_path], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['ok'] and summary['environment']['mode'] == 'cpu'
    steps = {s['name']: s for s in summary['steps']}
    trained = [s for name, s in steps.items() if name.endswith('/train')]
    assert {s['name'] for s in trained} == {
        'mask_rcnn_shvit_s4_fp32/train', 'retinanet_shvit_s4_fp32/train', 'mask_rcnn_litv2_s_fp32/train',
        'fpn_litv2_s_dist2/train', 'shvit_s1_cls_fp32/train', 'swiftformer_xs_cls_fp32/train'}
    for step in trained:
        assert len(step['losses']) == 2 and all(map(math.isfinite, step['losses'])), step['name']
        assert steps[step['name'].replace('/train', '/test')]['rc'] == 0
    assert 'Distributed training: True' in Path(steps['fpn_litv2_s_dist2/train']['log']).read_text()
    metrics = {name: s.get('metrics', {}) for name, s in steps.items() if name.endswith('/test')}
    assert 'coco/bbox_mAP' in metrics['mask_rcnn_shvit_s4_fp32/test']
    assert 'coco/segm_mAP' in metrics['mask_rcnn_litv2_s_fp32/test']
    assert 'mIoU' in metrics['fpn_litv2_s_dist2/test']
    assert 'accuracy/top1' in metrics['swiftformer_xs_cls_fp32/test']
    assert steps['benchmark/cpu']['results']
    assert any('amp' in s for s in summary['skipped']) and any('shvit-gpu' in s for s in summary['skipped'])
