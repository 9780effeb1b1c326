"""Shared fixtures: the codebases' default scopes, random weights (``randomise``), the authors' key
names (``official_keys``, ``fpn_authors_keys``). The toy task of the tool tests is the module
tests/toy_task.py (configs import it by name), importable through ``pythonpath = tests`` (pytest.ini).

A Runner leaves its codebase as mmengine's global default scope, and a registry build follows that
scope (an mmpretrain build after an mmdet Runner would look in mmdet's registry, and could even pick
mmdet's loss of the same name). Tests that build through a codebase's registry use its scope fixture.
"""
import json
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

DATA = Path(__file__).parent / 'data'


def _scope_fixture(scope):
    @pytest.fixture
    def fixture():
        with DefaultScope.overwrite_default_scope(scope):
            yield
    return fixture


mmdet_scope = _scope_fixture('mmdet')
mmpretrain_scope = _scope_fixture('mmpretrain')
mmseg_scope = _scope_fixture('mmseg')


def _randomise(model, seed=0):
    """Random weights and BN statistics, so that equal outputs mean equal computations."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if 'running_var' in name
                        else torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()


@pytest.fixture(scope='session')
def randomise():
    """``randomise(model, seed=0)``: ``model`` with random weights and BN statistics, in eval mode."""
    return _randomise


@pytest.fixture(scope='session')
def official_keys():
    """``official_keys(family)``: tests/data/<family>_official_keys.json, the parameter names and shapes of
    the authors' released checkpoints (a fresh copy on each call)."""
    def load(family):
        return json.loads((DATA / f'{family}_official_keys.json').read_text())
    return load


@pytest.fixture(scope='session')
def fpn_authors_keys():
    """The authors' neck (SHViT downstream/efficientvit_fpn.py, mmdet 2.25): parameter names as listed
    from their code for the two SHViT-S4 detection configs, {'mask_rcnn' | 'retinanet': [name]}."""
    return {
        'mask_rcnn': [f'{m}.{i}.conv.{p}' for m, n in (('lateral_convs', 3), ('fpn_convs', 3),
                                                       ('extra_trans_convs', 2), ('extra_fpn_convs', 2))
                      for i in range(n) for p in ('weight', 'bias')],
        'retinanet': [f'{m}.{i}.conv.{p}' for m, n in (('lateral_convs', 3), ('fpn_convs', 4),
                                                       ('extra_trans_convs', 1), ('extra_fpn_convs', 1))
                      for i in range(n) for p in ('weight', 'bias')],
    }
