from .conv_bn import ConvBN, Residual, bn_scale_shift, fuse_bn_conv, fuse_conv_bn
from .deploy import fuse, switch_to_deploy, use_cpu_kernels
from .dtm import DTM, OffsetDeformConv2d
from .fused import ConvAct, LinearAct, ResidualConv, fuse_activations, to_conv_act, to_linear_act

__all__ = ['ConvAct', 'ConvBN', 'DTM', 'LinearAct', 'OffsetDeformConv2d', 'Residual', 'ResidualConv', 'bn_scale_shift',
           'fuse', 'fuse_activations', 'fuse_bn_conv', 'fuse_conv_bn', 'switch_to_deploy', 'to_conv_act',
           'to_linear_act', 'use_cpu_kernels']
