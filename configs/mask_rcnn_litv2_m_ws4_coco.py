# Mask R-CNN with LITv2-M + FPN, HiLo window 4 in stage 3 (the authors' "ws 4" variant: fewer Lo-Fi
# keys, cheaper at detection resolution), COCO 2017, 1x (reported: 46.5 box AP / 42.0 mask AP on val2017).
_base_ = ['./mask_rcnn_litv2_m_coco.py']

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
