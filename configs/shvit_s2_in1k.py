# SHViT-S2 on ImageNet-1k, 224x224, the authors' recipe (see _base_/shvit_in1k.py): weight decay 0.032.
# Reported: 75.2 top-1.
_base_ = ['./_base_/shvit_in1k.py']

model = dict(backbone=dict(arch='s2'), head=dict(in_channels=448))
optim_wrapper = dict(optimizer=dict(weight_decay=0.032))
