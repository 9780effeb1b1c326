from .conv_bn import ConvBN, Residual, bn_scale_shift, fuse_bn_conv, fuse_conv_bn, switch_to_deploy
from .dtm import DTM, DeformConv2dPack
from .fused import ConvAct, LinearAct, ResidualConv, fuse_activations, to_conv_act, to_linear_act

__all__ = ['ConvAct', 'ConvBN', 'DTM', 'DeformConv2dPack', 'LinearAct', 'Residual', 'ResidualConv', 'bn_scale_shift',
           'fuse_activations', 'fuse_bn_conv', 'fuse_conv_bn', 'switch_to_deploy', 'to_conv_act',
           'to_linear_act']
