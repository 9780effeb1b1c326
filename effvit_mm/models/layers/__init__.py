from .conv_bn import ConvBN, Residual, switch_to_deploy

__all__ = ['ConvBN', 'Residual', 'switch_to_deploy']
