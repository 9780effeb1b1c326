"""Shared fixtures.

A Runner leaves its codebase as mmengine's global default scope, and a registry build follows that
scope (an mmpretrain build after an mmdet Runner would look in mmdet's registry, and could even pick
mmdet's loss of the same name). Tests that build through a codebase's registry use its scope fixture.
"""
import pytest
from mmengine.registry import DefaultScope


def _scope_fixture(scope):
    @pytest.fixture
    def fixture():
        with DefaultScope.overwrite_default_scope(scope):
            yield
    return fixture


mmdet_scope = _scope_fixture('mmdet')
mmpretrain_scope = _scope_fixture('mmpretrain')
mmseg_scope = _scope_fixture('mmseg')
