from .backbones import *  # noqa: F401,F403  (registers into mmengine's root MODELS)
from .classifiers import DistilledImageClassifier  # noqa: F401
from .heads import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
