# SwiftFormer-L3 on ImageNet-1k, 224x224, the authors' recipe with distillation (see
# _base_/swiftformer_in1k.py). Reported: 83.0 top-1.
_base_ = ['./_base_/swiftformer_in1k.py']

model = dict(backbone=dict(arch='l3'), head=dict(in_channels=512))
