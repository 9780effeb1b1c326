"""Whole detectors and segmentors shipped as graphs + host code: :func:`export_model` writes a folder,
:class:`DeployedModel` runs it with mmdet / mmseg's data samples (see the modules' docstrings)."""
from .deployed_model import BACKENDS, DeployedModel, init_deployed, model_digest, read_deploy_meta, use_deployed
from .export import export_model

__all__ = ['BACKENDS', 'DeployedModel', 'export_model', 'init_deployed', 'model_digest', 'read_deploy_meta',
           'use_deployed']
