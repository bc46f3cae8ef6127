from ablate.losses.config import LossConfig
from ablate.losses.criterion import SetCriterion, build_criterion
from ablate.losses.matcher import HungarianMatcher

__all__ = ["HungarianMatcher", "LossConfig", "SetCriterion", "build_criterion"]
