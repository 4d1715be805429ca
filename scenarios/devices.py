"""Device classes: peak dense FLOP/s, memory and power, from vendors' published specifications.

A scenario names a device class per tier (user, edge, main server, cloud); the simulator uses
peak x `compute.flops_utilization` (the share of peak a training step sustains) unless explicit
`*_flops_per_s` overrides are given. fp32 peaks are the plain FP32 rates (no TF32); bf16/fp16
peaks are the dense tensor-core rates (no sparsity). `power_w` is the board power a training step
draws at full speed: the module's or card's maximum power (TDP / TGP) from the same datasheets; for
phones, which publish none, the sustained GPU-load power that device reviews measure (an estimate,
marked as such). The energy model (optimizer.energy.model) multiplies it by busy time.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class DeviceClass:
    name: str
    fp32_flops_per_s: float
    half_flops_per_s: float  # bf16 / fp16 dense
    memory_bytes: int
    power_w: float
    source: str
    reserved_bytes: int = 0  # what the OS / driver keeps of memory_bytes (RESERVED_* below)
    allocator_slack_fraction: float = 0.0  # a CUDA device's caching allocator: reserved above the tensors' peak

    @property
    def usable_memory_bytes(self) -> int:
        """What a training step's tensors can take at their peak: installed memory less what the
        system keeps, less the caching allocator's slack on a CUDA device (learning/cuda_memory.py)."""
        return int((self.memory_bytes - self.reserved_bytes) / (1 + self.allocator_slack_fraction))

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.fp32_flops_per_s if dtype == "float32" else self.half_flops_per_s


# What a training process cannot have of a device's memory (estimates; a study checks tiers against
# the rest, DeviceClass.usable_memory_bytes):
# - a phone: the OS, its resident services, the launcher and the apps the user keeps open hold 2-3 GB
#   of an 8 GB flagship; Android's low-memory killer and iOS's jetsam end a foreground app that
#   reaches into that (Apple, "Reducing your app's memory use": the limit "depends on the device").
#   We keep 2.5 GB, the middle, on every phone (6 GB phones leave 3.5 GB: tight, as on real ones).
# - a Jetson module: Linux (JetPack, headless) and the CUDA context in its shared LPDDR5, about 1 GB.
# - a discrete GPU: the CUDA context and the driver's own allocations, a few hundred MiB per
#   process before any tensor (PyTorch, "CUDA semantics: memory management"); 0.5 GiB.
# On a CUDA device (GPUs, Jetsons) the caching allocator's slack comes on top: it reserves more than
# the tensors hold at the peak. Both terms, their sources and the check against published measured
# peaks: learning/cuda_memory.py and benchmarks/bench_cuda_memory.py.
CUDA_CONTEXT_BYTES = GIB // 2  # context, kernels, cuBLAS/cuDNN handles; about +-0.2 GiB
ALLOCATOR_SLACK_FRACTION = 0.03  # reserved / allocated - 1 at a training step's peak (an estimate, 0-10 %)
RESERVED_PHONE = int(2.5 * 10**9)
RESERVED_JETSON = 1 * GIB  # Linux and the CUDA context, in the shared LPDDR5
RESERVED_GPU = CUDA_CONTEXT_BYTES


def _flagship_phone(ram_gb: int, models: str) -> DeviceClass:
    """A phone with a 2023-24 flagship GPU (about 2 TFLOPS fp32, Apple A17 Pro at launch) and `ram_gb`."""
    return DeviceClass(f"phone-{ram_gb}gb", 2.0e12, 4.0e12, ram_gb * GIB, 5.0,
                       f"a flagship phone GPU (about 2 TFLOPS fp32, Apple A17 Pro at launch); {ram_gb} GB RAM "
                       f"({models}); about 5 W sustained under GPU load (an estimate)", RESERVED_PHONE)


DEVICES: dict[str, DeviceClass] = {d.name: d for d in (
    DeviceClass("jetson-orin-nano", 1.28e12, 2.56e12, 8 * GIB, 15.0,
                "NVIDIA Jetson Orin Nano 8GB: 1024-core Ampere GPU at 625 MHz (2 FLOP/cycle/core fp32); "
                "fp16 at twice that; 8 GB LPDDR5 shared; 7-15 W power modes (module datasheet), 15 W", RESERVED_JETSON, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("jetson-agx-orin", 5.32e12, 10.6e12, 64 * GIB, 60.0,
                "NVIDIA Jetson AGX Orin 64GB datasheet: 2048-core Ampere GPU at 1.3 GHz, 5.3 TFLOPS fp32; "
                "64 GB LPDDR5; 15-60 W power modes, 60 W", RESERVED_JETSON, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("smartphone", 2.0e12, 4.0e12, 8 * GIB, 5.0,
                "a flagship phone GPU of 2023-24 (about 2 TFLOPS fp32, e.g. Apple A17 Pro as reported by "
                "Apple at launch); 8 GB RAM; about 5 W sustained under GPU load (an estimate: phones publish no "
                "power figure)", RESERVED_PHONE),
    # Phones by installed RAM (the OS and other apps keep 2-3 GB of it): the GPU is a 2023-24 mobile
    # GPU of the class above; RAM sizes as shipped, e.g. 6 GB Galaxy A35, 8 GB Pixel 8 and iPhone 15 Pro,
    # 12 GB Galaxy S24 Ultra and Pixel 8 Pro, 16 GB OnePlus 12 / ROG Phone 8 Pro (makers' spec sheets).
    DeviceClass("phone-6gb", 1.0e12, 2.0e12, 6 * GIB, 4.0,
                "a mid-range phone (e.g. Samsung Galaxy A35: Mali-G68 MP5, about 1 TFLOPS fp32); 6 GB RAM; about 4 W "
                "sustained under GPU load (an estimate)", RESERVED_PHONE),
    *(_flagship_phone(gb, models) for gb, models in ((8, "Pixel 8, iPhone 15 Pro"),
                                                      (12, "Galaxy S24 Ultra, Pixel 8 Pro"),
                                                      (16, "OnePlus 12, ROG Phone 8 Pro"))),
    DeviceClass("rtx-4090", 82.6e12, 165.2e12, 24 * GIB, 450.0,
                "NVIDIA GeForce RTX 4090 specifications: 82.6 TFLOPS fp32, 165.2 TFLOPS dense fp16/bf16 "
                "tensor (fp32 accumulate); 24 GB; 450 W total graphics power", RESERVED_GPU, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("l4", 30.3e12, 121e12, 24 * GIB, 72.0,
                "NVIDIA L4 datasheet: 30.3 TFLOPS fp32, 121 TFLOPS dense bf16 (242 with sparsity); 24 GB; "
                "72 W max power", RESERVED_GPU, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("a100", 19.5e12, 312e12, 80 * GIB, 400.0,
                "NVIDIA A100 80GB SXM datasheet: 19.5 TFLOPS fp32, 312 TFLOPS dense bf16; 80 GB; 400 W max TDP", RESERVED_GPU, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("h100", 67e12, 989e12, 80 * GIB, 700.0,
                "NVIDIA H100 SXM datasheet: 67 TFLOPS fp32, 989 TFLOPS dense bf16 (1979 with sparsity); 80 GB; "
                "up to 700 W TDP", RESERVED_GPU, ALLOCATOR_SLACK_FRACTION),
    DeviceClass("h200", 67e12, 989e12, 141 * GIB, 700.0,
                "NVIDIA H200 SXM datasheet: 67 TFLOPS fp32, 989 TFLOPS dense bf16 (1979 with sparsity); "
                "141 GB HBM3e; up to 700 W TDP", RESERVED_GPU, ALLOCATOR_SLACK_FRACTION),
)}
