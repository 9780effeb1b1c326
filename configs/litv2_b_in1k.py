# LITv2-B on ImageNet-1k, 224x224, the authors' recipe (see _base_/litv2_in1k.py): drop path 0.5.
# Reported: 83.6 top-1.
_base_ = ['./_base_/litv2_in1k.py']

model = dict(backbone=dict(arch='b', drop_path_rate=0.5), head=dict(in_channels=1024))
