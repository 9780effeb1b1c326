from .litv2 import LITv2
from .shvit import SHViT
from .swiftformer import SwiftFormer

__all__ = ['LITv2', 'SHViT', 'SwiftFormer']
