"""Real split LoRA fine-tuning with torch, transformers and peft: models, LoRA, split, profiles."""

from .errors import LearningError
from .lora import LoraSpec, apply_lora, block_linear_names
from .models import ARCHITECTURES, PRESETS, ModelSpec, build_model, minilm_dir
from .profile import profile_from_config, profile_model, specs_from_config, synthetic_batch
from .split import Crossing, SplitStepResult, Tier, check_cuts, split_model, split_step

__all__ = [
    "ARCHITECTURES", "Crossing", "LearningError", "LoraSpec", "ModelSpec", "PRESETS", "SplitStepResult", "Tier",
    "apply_lora", "block_linear_names", "build_model", "check_cuts", "minilm_dir", "profile_from_config",
    "profile_model", "specs_from_config", "split_model", "split_step", "synthetic_batch",
]
