# LITv2-M on ImageNet-1k, 224x224, the authors' recipe (see _base_/litv2_in1k.py): drop path 0.3.
# Reported: 83.3 top-1.
_base_ = ['./_base_/litv2_in1k.py']

model = dict(backbone=dict(arch='m', drop_path_rate=0.3), head=dict(in_channels=768))
