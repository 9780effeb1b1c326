"""EfficientViTFPN: mmdet's FPN plus transposed 2x convs that build finer levels.

The detection neck of EfficientViT and SHViT. The backbone's coarsest-but-one...finest stride is 16, so
``num_extra_trans_convs`` transposed convs upsample the (top-down merged) finest lateral by 2 each:
with SHViT (strides 16/32/64), 2 of them give Mask R-CNN strides 4..64; 1 of them plus one extra
stride-2 conv (``add_extra_convs='on_input'``) gives RetinaNet strides 8..128. Parameter names
(``lateral_convs``, ``fpn_convs``, ``extra_trans_convs``, ``extra_fpn_convs``) match the authors'
mmdet 2.x neck, whose released detectors load unchanged.
"""
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN
from mmengine.registry import MODELS


@MODELS.register_module()
class EfficientViTFPN(FPN):
    """FPN with ``num_extra_trans_convs`` transposed-conv levels finer than the first input.

    Args are those of :class:`mmdet.models.necks.FPN`, plus ``num_extra_trans_convs`` (int). The
    ``num_outs`` outputs are, finest first: the transposed-conv levels, the input levels, then the
    extra coarser levels (max-pool or ``add_extra_convs``). Shapes: inputs
    (N, in_channels[i], H_i, W_i) -> outputs (N, out_channels, H, W) at strides doubling per level.
    """

    def __init__(self, in_channels, out_channels, num_outs, num_extra_trans_convs=0,
                 conv_cfg=None, norm_cfg=None, act_cfg=None, **kwargs):
        if not 0 <= num_extra_trans_convs <= num_outs - len(in_channels):
            raise ValueError(f'EfficientViTFPN: num_extra_trans_convs={num_extra_trans_convs} must be in '
                             f'[0, num_outs - len(in_channels)] = [0, {num_outs - len(in_channels)}]')
        super().__init__(in_channels, out_channels, num_outs - num_extra_trans_convs,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, **kwargs)
        self.num_outs = num_outs
        self.num_extra_trans_convs = num_extra_trans_convs
        self.extra_trans_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 2, stride=2, conv_cfg=dict(type='deconv'),
                       norm_cfg=None if self.no_norm_on_lateral else norm_cfg, act_cfg=act_cfg, inplace=False)
            for _ in range(num_extra_trans_convs))
        self.extra_fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=act_cfg, inplace=False)
            for _ in range(num_extra_trans_convs))

    def forward(self, inputs):
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'EfficientViTFPN expects {len(self.in_channels)} inputs, got {len(inputs)}')
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down path
            if 'scale_factor' in self.upsample_cfg:
                laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                laterals[i - 1] = laterals[i - 1] + F.interpolate(
                    laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)

        finer = []  # transposed convs on the finest lateral, finest level first
        x = laterals[0]
        for trans_conv in self.extra_trans_convs:
            x = trans_conv(x)
            finer.insert(0, x)
        finer = [conv(x) for conv, x in zip(self.extra_fpn_convs, finer)]

        outs = [self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)]
        num_coarse = self.num_outs - self.num_extra_trans_convs
        if num_coarse > len(outs):
            if not self.add_extra_convs:
                while len(outs) < num_coarse:
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {'on_input': inputs[self.backbone_end_level - 1], 'on_lateral': laterals[-1],
                          'on_output': outs[-1]}[self.add_extra_convs]
                outs.append(self.fpn_convs[len(outs)](source))
                while len(outs) < num_coarse:
                    x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[len(outs)](x))
        return tuple(finer + outs)
