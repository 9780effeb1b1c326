# LITv2-S on ImageNet-1k, 224x224, the authors' recipe (see _base_/litv2_in1k.py): drop path 0.2.
# Reported: 82.0 top-1.
_base_ = ['./_base_/litv2_in1k.py']

model = dict(backbone=dict(arch='s', drop_path_rate=0.2), head=dict(in_channels=768))
