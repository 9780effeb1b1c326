from .cls_heads import DistillableClsHead, LITv2ClsHead, SHViTClsHead, SwiftFormerClsHead

__all__ = ['DistillableClsHead', 'LITv2ClsHead', 'SHViTClsHead', 'SwiftFormerClsHead']
