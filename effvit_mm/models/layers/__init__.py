from .conv_bn import ConvBN, Residual, bn_scale_shift, fuse_bn_conv, fuse_conv_bn, switch_to_deploy
from .dtm import DTM, DeformConv2dPack

__all__ = ['ConvBN', 'DTM', 'DeformConv2dPack', 'Residual', 'bn_scale_shift', 'fuse_bn_conv', 'fuse_conv_bn',
           'switch_to_deploy']
