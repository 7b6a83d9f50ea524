"""Models made for tests and benchmarks: random GPT-2 folders, and the independent `transformers`
reference for a GGUF file (read by transformers' own GGUF loader, not by ours)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def transformers_from_gguf(path: Path):
    """transformers' own model for a GGUF file: its loader dequantizes and un-permutes the
    weights, so a bug in ours cannot sit on both sides of a comparison. Eager attention, float32."""
    import transformers

    path = Path(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, torch_dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def write_random_gpt2(folder: Path, d_model: int, n_layers: int = 1, n_heads: int = 2, n_ctx: int = 8,
                      vocab_size: int = 50257, seed: int = 0) -> Path:
    """A GPT-2 folder with random weights (normal, std 0.02; norm scales 1), in Hugging Face's
    layout and with GPT-2's vocabulary size, so GPT-2's tokenizer reads it. For tests and
    benchmarks: any size, no download."""
    from safetensors.torch import save_file

    D, M, V = d_model, 4 * d_model, vocab_size
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": D, "n_layer": n_layers,
                                                    "n_head": n_heads, "n_positions": n_ctx, "vocab_size": V}))
    shapes = {"wte.weight": (V, D), "wpe.weight": (n_ctx, D), "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for L in range(n_layers):
        h = f"h.{L}."
        shapes |= {h + "ln_1.weight": (D,), h + "ln_1.bias": (D,), h + "ln_2.weight": (D,), h + "ln_2.bias": (D,),
                   h + "attn.c_attn.weight": (D, 3 * D), h + "attn.c_attn.bias": (3 * D,),
                   h + "attn.c_proj.weight": (D, D), h + "attn.c_proj.bias": (D,),
                   h + "mlp.c_fc.weight": (D, M), h + "mlp.c_fc.bias": (M,),
                   h + "mlp.c_proj.weight": (M, D), h + "mlp.c_proj.bias": (D,)}
    g = torch.Generator().manual_seed(seed)
    weights = {name: torch.ones(shape) if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
               else torch.randn(shape, generator=g) * 0.02 for name, shape in shapes.items()}
    save_file(weights, str(folder / "model.safetensors"))
    return folder


def train_byte_level_tokenizer(folder: Path, text: str, vocab_size: int):
    """A small byte-level BPE tokenizer (GPT-2's pre-tokenizer), trained here on `text` and two
    fixed sentences, saved as folder/tokenizer.json: the tiny random models need some tokenizer."""
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer()
    corpus = [text, "The fluffy blue creature roamed the verdant forest.", "Queries, keys and values."] * 20
    tok.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=2, show_progress=False)
    tok.save(str(folder / "tokenizer.json"))
    return tok
