"""Our transformer against Hugging Face `transformers` on tiny random-weight models.

Each model is made here, saved with `save_pretrained` (safetensors), and read back by our
loader; logits and every layer's attention pattern must match.
"""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from builders import train_byte_level_tokenizer  # noqa: E402
from model.loading import load  # noqa: E402
from model.trace import run_trace  # noqa: E402

TEXT = "Attention is all you need, said the 8 transformers in 2017."


def compare(folder, hf_model, n_layers):
    ours = load(str(folder), "cpu")
    ids = ours.encoding.encode(TEXT)
    trace = run_trace(ours, TEXT)
    with torch.no_grad():
        out = hf_model(torch.tensor([ids]), output_attentions=True)
    torch.testing.assert_close(trace["logits"], out.logits[0], atol=1e-4, rtol=1e-4)
    for layer in range(n_layers):
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0], atol=1e-4, rtol=1e-4)
    return trace


def test_gpt2_matches_transformers(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=3, n_embd=64, n_head=4, n_positions=128, vocab_size=50257)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    trace = compare(tmp_path, hf, 3)
    assert "hook_pos_embed" in trace  # learned positions


@pytest.fixture
def byte_level_tokenizer(tmp_path):
    return train_byte_level_tokenizer(tmp_path, TEXT, vocab_size=400)


def test_llama_with_grouped_query_attention_matches_transformers(tmp_path, byte_level_tokenizer):
    torch.manual_seed(0)
    vocab = byte_level_tokenizer.get_vocab_size()
    config = transformers.LlamaConfig(
        vocab_size=vocab, hidden_size=96, intermediate_size=160, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=128, rope_theta=100000.0,
        tie_word_embeddings=False,
    )
    hf = transformers.LlamaForCausalLM(config).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    trace = compare(tmp_path, hf, 3)
    assert trace["blocks.0.attn.hook_k"].shape[1] == 2  # two shared key/value heads
    assert trace["blocks.0.attn.hook_q"].shape[1] == 6


def test_tokenizer_json_encodes_like_the_tokenizers_library(tmp_path, byte_level_tokenizer):
    from model.tokenizer import encoding_from_tokenizer_json

    ours = encoding_from_tokenizer_json(tmp_path / "tokenizer.json")
    for text in (TEXT, "  spaces   and\ttabs\n", "ünïcödé 🙂 emoji", "it's they'll we've"):
        assert ours.encode(text) == byte_level_tokenizer.encode(text).ids, text
