from .backbones import *  # noqa: F401,F403  (registers into mmengine's root MODELS)
from .necks import *  # noqa: F401,F403
