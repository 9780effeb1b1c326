# SwiftFormer-L1 on ImageNet-1k, 224x224, the authors' recipe with distillation (see
# _base_/swiftformer_in1k.py). Reported: 80.9 top-1.
_base_ = ['./_base_/swiftformer_in1k.py']

model = dict(backbone=dict(arch='l1'), head=dict(in_channels=384))
