#!/usr/bin/python3
"""Golden logits for the forward-pass tests, computed independently in torch.

Run with Debian's python3-torch under the system python (not needed by the tests, which read the stored .npy files):
    /usr/bin/python3 scripts/golden-logits.py

For each tiny checkpoint in test/fixtures (tiny-llama, tiny-mistral, tiny-gemma) and its fixed prompt (token ids), it
runs the model's forward pass in float32 (weights widened from their stored dtype) and writes the logits of every
prompt position, float32 [tokens, vocab], to test/fixtures/golden/<model>.npy, and the prompts to
test/fixtures/golden/prompts.json.

The model code follows transformers' modeling_llama.py, modeling_mistral.py and modeling_gemma.py (transformers is
not imported): RMSNorm in float32 (gemma: x̂ · (1 + w)), rotate_half RoPE with cat(freqs, freqs) (linear scaling
divides positions by the factor), repeat_kv for grouped-query attention, an additive causal mask (mistral: keys j with
i − sliding_window < j ≤ i), softmax in float32, SwiGLU (gemma: GeGLU with the tanh GELU), gemma's embeddings
× sqrt(hidden) as a tensor of the activation dtype, tied heads.
"""
import json
import math
import os

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
FIXTURES = os.path.join(ROOT, 'test', 'fixtures')

PROMPTS = {
    'tiny-llama': [1, 45, 300, 17, 88, 129, 401, 5, 77, 250, 3, 500],
    # 20 tokens: longer than the sliding window of 8
    'tiny-mistral': [1, 9, 100, 33, 200, 47, 5, 81, 150, 12, 99, 240, 18, 64, 7, 130, 222, 41, 60, 255],
    'tiny-gemma': [2, 40, 180, 9, 77, 201, 13, 99, 150, 6, 250, 31],
}


def read_safetensors(path):
    out = {}
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(n))
        data = f.read()
    for name, t in header.items():
        if name == '__metadata__':
            continue
        b, e = t['data_offsets']
        raw = data[b:e]
        if t['dtype'] == 'BF16':
            a = (np.frombuffer(raw, '<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, {'F32': '<f4', 'F16': '<f2'}[t['dtype']]).astype(np.float32)
        out[name] = torch.from_numpy(a.reshape(t['shape']).copy())
    return out


def load_checkpoint(d):
    idx = os.path.join(d, 'model.safetensors.index.json')
    files = sorted(set(json.load(open(idx))['weight_map'].values())) if os.path.exists(idx) else ['model.safetensors']
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(d, f)))
    return w


class RMSNorm:
    def __init__(self, weight, eps, add_one):
        self.weight, self.eps, self.add_one = weight, eps, add_one

    def __call__(self, x):
        x = x.float()
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return x * (1.0 + self.weight.float()) if self.add_one else self.weight * x


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(cfg, head_dim, positions):
    base = cfg.get('rope_theta', 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = positions.float()
    sc = cfg.get('rope_scaling')
    if sc:
        kind = sc.get('type', sc.get('rope_type'))
        if kind != 'linear':
            raise SystemExit(f'rope_scaling {kind} not implemented here')
        t = t / sc['factor']
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def repeat_kv(x, n_rep):
    b, h, s, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)


def causal_mask(n, sliding_window):
    mask = torch.full((n, n), torch.finfo(torch.float32).min)
    mask = torch.triu(mask, diagonal=1)
    if sliding_window is not None:
        # transformers' _make_causal_mask: diagonal = past - sliding_window + 1
        context = 1 - torch.triu(torch.ones(n, n, dtype=torch.int), diagonal=-sliding_window + 1)
        mask.masked_fill_(context.bool(), torch.finfo(torch.float32).min)
    return mask[None, None]


def forward(cfg, w, ids):
    family = cfg['model_type']
    gemma = family == 'gemma'
    hidden = cfg['hidden_size']
    heads = cfg['num_attention_heads']
    kv_heads = cfg.get('num_key_value_heads', heads)
    head_dim = cfg.get('head_dim') or hidden // heads
    eps = cfg['rms_norm_eps']
    window = cfg.get('sliding_window') if family == 'mistral' else None
    n = len(ids)
    x = w['model.embed_tokens.weight'][torch.tensor(ids)][None]  # [1, n, hidden]
    if gemma:
        x = x * torch.tensor(hidden**0.5, dtype=x.dtype)
    positions = torch.arange(n)
    cos, sin = rope_cos_sin(cfg, head_dim, positions)
    cos, sin = cos[None, None], sin[None, None]
    mask = causal_mask(n, window)
    if gemma:
        act = lambda t: torch.nn.functional.gelu(t, approximate='tanh')  # noqa: E731
    else:
        act = torch.nn.functional.silu
    for layer in range(cfg['num_hidden_layers']):
        p = f'model.layers.{layer}.'
        res = x
        h = RMSNorm(w[p + 'input_layernorm.weight'], eps, gemma)(x)
        q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(1, n, heads, head_dim).transpose(1, 2)
        k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(1, n, kv_heads, head_dim).transpose(1, 2)
        v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(1, n, kv_heads, head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, heads // kv_heads)
        v = repeat_kv(v, heads // kv_heads)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(head_dim) + mask
        probs = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32)
        a = torch.matmul(probs, v).transpose(1, 2).reshape(1, n, heads * head_dim)
        x = res + a @ w[p + 'self_attn.o_proj.weight'].T
        res = x
        h = RMSNorm(w[p + 'post_attention_layernorm.weight'], eps, gemma)(x)
        g = act(h @ w[p + 'mlp.gate_proj.weight'].T)
        u = h @ w[p + 'mlp.up_proj.weight'].T
        x = res + (g * u) @ w[p + 'mlp.down_proj.weight'].T
    x = RMSNorm(w['model.norm.weight'], eps, gemma)(x)
    head = w.get('lm_head.weight')
    if head is None or cfg.get('tie_word_embeddings', gemma):
        head = w['model.embed_tokens.weight']
    return (x @ head.T)[0].float()


def main():
    torch.set_grad_enabled(False)
    out_dir = os.path.join(FIXTURES, 'golden')
    os.makedirs(out_dir, exist_ok=True)
    for name, ids in PROMPTS.items():
        d = os.path.join(FIXTURES, name)
        cfg = json.load(open(os.path.join(d, 'config.json')))
        logits = forward(cfg, load_checkpoint(d), ids).numpy().astype(np.float32)
        path = os.path.join(out_dir, f'{name}.npy')
        np.save(path + '.tmp.npy', logits)
        os.replace(path + '.tmp.npy', path)
        print(f'{path}: {logits.shape}, argmax {logits.argmax(-1).tolist()}')
    tmp = os.path.join(out_dir, '.prompts.json.tmp')
    with open(tmp, 'w') as f:
        json.dump({'torch': torch.__version__, 'prompts': PROMPTS}, f, indent=2)
        f.write('\n')
    os.replace(tmp, os.path.join(out_dir, 'prompts.json'))


if __name__ == '__main__':
    main()
