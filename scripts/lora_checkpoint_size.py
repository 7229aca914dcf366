"""How big is a LoRA checkpoint of LFM2-VL-450M + 3 liquid layers, next to the base on disk? (issue 14)

    PYTHONPATH=src python scripts/lora_checkpoint_size.py [--workdir DIR] [--lora-rank R] [--save-dtype D] [overrides]

1. builds the `lfm2_vl_450m` preset (exactly the published architecture) with random weights and saves it with
   transformers' `save_pretrained` (by default in bfloat16, as LiquidAI publishes it) plus a small word-level
   tokenizer, as a local `pretrained_path` directory;
2. trains `model=lfm2_liquid model.pretrained_path=<dir> model.base_tuning=lora` for 2 steps through the real
   `train.py` (tiny `data=folder` episodes, batch 1, small frames: frame size does not change any weight's
   shape), with every liquid default a real directory gets (layers [0, 3, 15], 256 neurons) and the LoRA
   defaults unless given (rank 8, all of q/k/v/out_proj and in_proj/out_proj of the decoder);
3. prints the base's safetensors size, `last.ckpt`'s size, the ratio, what the checkpoint holds (weights by
   group, optimizer state), the trainable parameter counts, and checks that `lnn.runs.load_policy` re-attaches
   the base (a frozen weight equal to the directory's, the adapters equal to the checkpoint's).

Random weights give the same sizes as real ones. Needs a few GB of RAM (the 450M in float32) and about a minute of CPU.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6


def save_base(directory: Path, dtype: str) -> int:
    """The 450M preset with random weights, saved as a pretrained directory; -> its parameter count."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from lnn.models.lfm2.config import DTYPES, build_base

    torch.manual_seed(0)
    base = build_base("lfm2_vl_450m").to(DTYPES[dtype])
    n = sum(p.numel() for p in base.parameters())
    base.save_pretrained(directory)
    del base
    # the loader needs a tokenizer; the real one (65k tokens) is a few MB more on disk, and not counted below
    specials = ["<|pad|>", "<|startoftext|>", "<|im_end|>", "<|im_start|>", "<unk>", "<|image_start|>", "<|image_end|>"]
    vocab = {t: i for i, t in enumerate(specials + ["user", "assistant", "click", "type", "finish", "\n"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", bos_token="<|startoftext|>",
                                   eos_token="<|im_end|>", unk_token="<unk>")  # fmt: skip
    fast.save_pretrained(directory)
    return n


def write_folder(folder: Path, episodes: int = 6, steps: int = 2) -> None:
    """A few episodes of screenshots for data=folder: clicks, then done."""
    from PIL import Image

    lines = []
    for e in range(episodes):
        for s in range(steps):
            image = f"e{e}/{s}.png"
            (folder / image).parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(e * steps + s).integers(0, 256, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / image)
            last = s == steps - 1
            line = {"episode": f"e{e}", "step": s, "image": image, "instruction": "finish" if last else "click",
                    "action": "done" if last else "click"}  # fmt: skip
            lines.append(line | ({} if last else {"x": 0.25, "y": 0.75}))
    (folder / "episodes.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")


def tensor_bytes(obj) -> int:
    """Bytes of every tensor in a nested structure (state dicts, optimizer states)."""
    if torch.is_tensor(obj):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def serialized(obj) -> int:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where the base, data and run go (default: a temporary directory, removed)")
    parser.add_argument("--save-dtype", default="bfloat16", choices=["bfloat16", "float32"],
                        help="dtype of the saved base (the published LFM2-VL-450M is bfloat16)")
    parser.add_argument("--lora-rank", type=int, default=None, help="model.lora_rank (default: the config's, 8)")
    parser.add_argument("--image-size", type=int, default=64, help="frames for the 2 steps (no effect on sizes)")
    parser.add_argument("overrides", nargs="*", help="more train.py overrides, e.g. model.lora_targets=[q_proj,v_proj]")
    args = parser.parse_args()

    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp).absolute()
        work.mkdir(parents=True, exist_ok=True)
        base_dir = work / "base"
        n_base = save_base(base_dir, args.save_dtype)
        base_bytes = sum(f.stat().st_size for f in base_dir.glob("*.safetensors"))
        saved_at = time.time()
        write_folder(work / "shots")

        overrides = ["model=lfm2_liquid", f"model.pretrained_path={base_dir}", "model.base_tuning=lora",
                     f"model.image_size={args.image_size}", "model.max_text_tokens=8", "data=folder", "data.path=shots",
                     "data.batch_size=1", "data.import_workers=1", "trainer=cpu", "trainer.max_steps=2",
                     "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "callbacks.progress=null",
                     "resume=false"]  # fmt: skip
        if args.lora_rank is not None:
            overrides.append(f"model.lora_rank={args.lora_rank}")
        overrides += args.overrides
        path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
        env = os.environ | {"LNN_ROOT": str(work), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        print("python train.py " + " ".join(overrides), flush=True)
        command = [sys.executable, str(ROOT / "train.py"), *overrides]
        run = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        trained_at = time.time()
        if run.returncode != 0:
            sys.exit(f"train.py failed ({run.returncode}):\n{run.stderr[-4000:]}")
        (last,) = (work / "logs" / "runs").glob("*/checkpoints/last.ckpt")
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
        state = ckpt["state_dict"]
        print(f"run: {last.parent.parent}  global_step {ckpt['global_step']}")

        # the policy as a run reloads it: from the checkpoint's spec, the base re-attached from pretrained_path
        from safetensors import safe_open

        from lnn.runs import load_policy

        policy = load_policy(last)
        groups = {id(p): g for g, ps in policy.param_groups().items() for p in ps}
        named = dict(policy.named_parameters())
        trainable = {n: p for n, p in named.items() if p.requires_grad}
        lora = {n: p for n, p in trainable.items() if "lora_" in n}
        liquid = {n: p for n, p in trainable.items() if groups[id(p)] == "liquid"}
        heads = {n: p for n, p in trainable.items() if groups[id(p)] == "heads"}
        other = set(trainable) - set(lora) - set(liquid) - set(heads)
        count = lambda ps: sum(p.numel() for p in ps.values())
        assert not other, f"trainable weights in no group: {sorted(other)[:5]}"
        assert set("model." + n for n in trainable) <= set(state), "a trained weight is missing from the checkpoint"
        frozen_in_ckpt = [k for k in state if k.removeprefix("model.") in set(named) - set(trainable)]
        assert not frozen_in_ckpt, f"frozen base weights in the checkpoint: {frozen_in_ckpt[:5]}"

        # re-attached: a frozen base weight equals the directory's, the adapters equal the checkpoint's
        key = "model.language_model.embed_tokens.weight"
        with safe_open(str(base_dir / "model.safetensors"), "pt") as f:
            disk = f.get_tensor(key)
        attached = policy.base.model.language_model.embed_tokens.weight
        reattached = torch.equal(attached.to(disk.dtype), disk) and all(
            torch.equal(p, state["model." + n]) for n, p in lora.items())
        assert policy.base_tuning == "lora" and policy.pretrained_path == str(base_dir) and reattached

        # what the checkpoint holds
        weight_bytes = {name: sum(p.numel() * p.element_size() for p in ps.values())
                        for name, ps in (("LoRA", lora), ("liquid", liquid), ("heads", heads))}  # fmt: skip
        optimizer = tensor_bytes(ckpt.get("optimizer_states", []))
        ckpt_bytes = last.stat().st_size
        state_file = serialized(state)  # the trained weights alone (+ base_sha256), as torch.save writes them

        print(f"\nbase: {n_base:,} parameters, model.safetensors {base_bytes / MB:,.1f} MB ({args.save_dtype})")
        adapted = [n.removesuffix(".lora_A") for n, _ in policy.named_modules() if n.endswith(".lora_A")]
        rank = policy.get_submodule(adapted[0]).r["default"]
        kinds = sorted({n.split(".")[-1] for n in adapted})
        print(f"liquid layers {policy.liquid_layers} x {policy.liquid_size} neurons; LoRA rank {rank} on "
              f"{len(adapted)} decoder projections ({', '.join(kinds)})")
        total = count(trainable)
        print(f"trainable: {total:,} ({total / n_base:.2%} of the base)")
        for name, ps in (("LoRA", lora), ("liquid", liquid), ("heads", heads)):
            print(f"  {name:7s} {count(ps):>10,}  {weight_bytes[name] / MB:7.2f} MB  "
                  f"({weight_bytes[name] / base_bytes:.2%} of the base file)")
        print(f"last.ckpt: {ckpt_bytes / MB:.2f} MB = {ckpt_bytes / base_bytes:.2%} of the base's model.safetensors")
        print(f"  trained weights (state_dict alone, torch.save): {state_file / MB:.2f} MB "
              f"= {state_file / base_bytes:.2%}")
        print(f"  optimizer state (AdamW exp_avg, exp_avg_sq): {optimizer / MB:.2f} MB = {optimizer / base_bytes:.2%}")
        print(f"  the rest (loop state, spec, config, metrics): {(ckpt_bytes - state_file - optimizer) / MB:.2f} MB")
        for other_ckpt in sorted(last.parent.glob("*.ckpt")):
            if other_ckpt != last:
                print(f"{other_ckpt.name}: {other_ckpt.stat().st_size / MB:.2f} MB")
        print(f"load_policy re-attaches the base: {reattached} (base_tuning {policy.base_tuning}, "
              f"pretrained_path {policy.pretrained_path})")  # fmt: skip
        print(f"wall time: {time.time() - start:.0f} s (base built and saved {saved_at - start:.0f} s, "
              f"train.py {trained_at - saved_at:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
