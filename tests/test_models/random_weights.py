"""Helpers shared by the model tests."""
import torch


def randomise_(model, seed=0):
    """Random weights and BN statistics, so that equal outputs mean equal computations."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if 'running_var' in name
                        else torch.randn(t.shape, generator=g) * 0.1)
    return model.eval()
