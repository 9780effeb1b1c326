"""Evaluation beyond the codebases' metrics: robustness to adversarial attacks (:mod:`.robustness`)."""
from .robustness import ATTACKS, RobustnessMeter, attack_batch, build_attack

__all__ = ['ATTACKS', 'RobustnessMeter', 'attack_batch', 'build_attack']
