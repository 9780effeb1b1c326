# SHViT-S1 on ImageNet-1k, 224x224, the authors' recipe (see _base_/shvit_in1k.py): weight decay 0.025.
# Reported: 72.8 top-1.
_base_ = ['./_base_/shvit_in1k.py']

model = dict(backbone=dict(arch='s1'), head=dict(in_channels=320))
optim_wrapper = dict(optimizer=dict(weight_decay=0.025))
