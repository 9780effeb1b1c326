"""Whole detectors and segmentors shipped as graphs + host code: :func:`export_model` writes a folder,
:class:`DeployedModel` runs it with mmdet / mmseg's data samples (see the modules' docstrings)."""
from .deployed_model import DeployedModel, read_deploy_meta, use_deployed
from .export import BACKENDS, export_model, model_digest

__all__ = ['BACKENDS', 'DeployedModel', 'export_model', 'model_digest', 'read_deploy_meta', 'use_deployed']
