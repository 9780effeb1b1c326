# RetinaNet with LITv2-B + FPN, HiLo window 4 in stage 3 (the authors' "ws 4" variant: fewer Lo-Fi
# keys, cheaper at detection resolution), COCO 2017, 1x (reported: 46.3 AP on val2017).
_base_ = ['./retinanet_litv2_b_coco.py']

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
