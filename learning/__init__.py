"""Real split LoRA fine-tuning with torch, transformers and peft: models, LoRA, split, profiles, training."""

from .cpu_isa import cap_onednn_isa

cap_onednn_isa()  # before any torch matmul: see cpu_isa.py


def _quiet_bitsandbytes_cpu_notice() -> None:
    """peft and transformers import bitsandbytes where it is installed; on a CPU its import logs that
    an optional inference kernel package is missing, which no profile or test uses."""
    import logging

    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
        lambda record: "gemm_4bit_forward" not in record.getMessage())


_quiet_bitsandbytes_cpu_notice()

from .data import TaskData, load_cifar100, load_mrpc, partition, partition_summary, synthetic_task
from .errors import LearningError
from .fedavg import fedavg
from .lora import LoraSpec, apply_lora, block_linear_names
from .models import ARCHITECTURES, PRESETS, ModelSpec, build_model, minilm_dir
from .profile import profile_from_config, profile_model, specs_from_config, synthetic_batch
from .split import Crossing, SplitStepResult, Tier, check_cuts, split_model, split_step
from .train import FederatedTrainer, RoundLog, TrainSettings

__all__ = [
    "ARCHITECTURES", "Crossing", "FederatedTrainer", "LearningError", "LoraSpec", "ModelSpec", "PRESETS", "RoundLog",
    "SplitStepResult", "TaskData", "Tier", "TrainSettings", "apply_lora", "block_linear_names", "build_model",
    "check_cuts", "fedavg", "load_cifar100", "load_mrpc", "minilm_dir", "partition", "partition_summary",
    "profile_from_config", "profile_model", "specs_from_config", "split_model", "split_step", "synthetic_batch",
    "synthetic_task",
]
