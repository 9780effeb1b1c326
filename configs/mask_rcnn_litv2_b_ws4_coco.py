# Mask R-CNN with LITv2-B + FPN, HiLo window 4 in stage 3 (the authors' "ws 4" variant: fewer Lo-Fi
# keys, cheaper at detection resolution), COCO 2017, 1x (reported: 46.8 box AP / 42.3 mask AP on val2017).
_base_ = ['./mask_rcnn_litv2_b_coco.py']

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
