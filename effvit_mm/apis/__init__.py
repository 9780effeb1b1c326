"""What users and the tools call: models by name (:mod:`.get_model`), the model zoo (:mod:`.model_zoo`),
the models the tools build (:mod:`.targets`) and predictions drawn on images (:mod:`.inference`)."""
from .get_model import get_backbone, get_classifier
from .inference import run_demo
from .model_zoo import UnknownModelError, get_entry, list_models, resolve_config
from .targets import build_model, build_target

__all__ = ['UnknownModelError', 'build_model', 'build_target', 'get_backbone', 'get_classifier', 'get_entry',
           'list_models', 'resolve_config', 'run_demo']
