"""Real split LoRA fine-tuning with torch, transformers and peft (filled in by the profile issue)."""
