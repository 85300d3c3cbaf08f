// The shape of tokenizer.json and tokenizer_config.json, checked before @huggingface/tokenizers sees them. The
// library trusts its input: a `merges` that is not a list, a decoder `Sequence` whose `decoders` is a string or a
// post-processor template that is a number fail inside it as "x.split is not a function" or "type is not iterable",
// and a vocabulary that is not a map loads and then encodes nothing. Here each of those is one sentence that says
// which key is wrong, and the ids are checked against the model's vocabulary once, at load, for run, eval and the
// playground alike. A step's `{"Regex": …}` pattern must compile as the library compiles it and must not be able to
// backtrack exponentially (tokenizer-regex.ts): the library runs it over every text, and `(\p{L}+)+x` would hang.

import { regexPatternProblem } from './tokenizer-regex';

/** The number of ids a tokenizer.json defines (its largest id + 1). */
export function tokenizerIdCount(json: unknown): number {
  const j = json as { model?: { vocab?: unknown }; added_tokens?: { id?: unknown }[] };
  let max = -1;
  const v = j?.model?.vocab;
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const id of Object.values(v as Record<string, unknown>)) if (typeof id === 'number' && id > max) max = id;
  } else if (Array.isArray(v)) max = v.length - 1; // Unigram: [[piece, score], …]
  for (const t of Array.isArray(j?.added_tokens) ? j.added_tokens : []) {
    if (typeof t?.id === 'number' && t.id > max) max = t.id;
  }
  return max + 1;
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
};

/** The list keys of the pipeline's `Sequence` steps, by section. */
const SEQUENCE_KEYS: Record<string, string> = {
  normalizer: 'normalizers',
  pre_tokenizer: 'pretokenizers',
  post_processor: 'processors',
  decoder: 'decoders',
};

/** A pipeline step (normalizer, pre-tokenizer, post-processor, decoder): an object with a type, recursively. */
function stepProblem(section: string, where: string, v: unknown, depth: number): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (!isObject(v)) return `${where} is ${show(v)}, not an object`;
  if (typeof v.type !== 'string') return `${where}.type is ${show(v.type)}, not a string`;
  if (depth > 32) return `${where} nests more than 32 steps deep`;
  if (v.type === 'Sequence') {
    const key = SEQUENCE_KEYS[section];
    const list = v[key];
    if (list !== undefined && !Array.isArray(list)) return `${where}.${key} is ${show(list)}, not a list`;
    for (const [i, s] of (list ?? []).entries()) {
      if (s === null || s === undefined) return `${where}.${key}[${i}] is ${show(s)}, not an object`;
      const p = stepProblem(section, `${where}.${key}[${i}]`, s, depth + 1);
      if (p) return p;
    }
  }
  if (v.type === 'TemplateProcessing') {
    for (const k of ['single', 'pair']) {
      if (v[k] !== undefined && !Array.isArray(v[k])) return `${where}.${k} is ${show(v[k])}, not a list`;
      for (const [i, piece] of ((v[k] as unknown[]) ?? []).entries()) {
        if (!isObject(piece)) return `${where}.${k}[${i}] is ${show(piece)}, not an object`;
      }
    }
    if (v.special_tokens !== undefined && !isObject(v.special_tokens)) {
      return `${where}.special_tokens is ${show(v.special_tokens)}, not an object`;
    }
  }
  if ('pattern' in v && v.pattern !== undefined && !isObject(v.pattern)) {
    return `${where}.pattern is ${show(v.pattern)}, not {"String": …} or {"Regex": …}`;
  }
  if (isObject(v.pattern)) {
    const { String: literal, Regex: regex } = v.pattern;
    if (literal !== undefined && typeof literal !== 'string') {
      return `${where}.pattern.String is ${show(literal)}, not a string`;
    }
    if (regex !== undefined) {
      if (typeof regex !== 'string') return `${where}.pattern.Regex is ${show(regex)}, not a string`;
      const p = regexPatternProblem(regex, `${where}.pattern.Regex`);
      if (p) return p;
    }
  }
  return undefined;
}

/** What is wrong with a parsed tokenizer.json, in one sentence, or undefined when its shape is sound. */
export function tokenizerJsonProblem(json: unknown): string | undefined {
  if (!isObject(json)) return `the tokenizer is ${Array.isArray(json) ? 'a list' : show(json)}, not an object`;
  const model = json.model;
  if (!isObject(model)) return `"model" is ${show(model)}, not an object`;
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], …]
    for (const [i, e] of vocab.entries()) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') {
        return `model.vocab[${i}] is ${show(e)}, not [piece, score]`;
      }
    }
  } else if (isObject(vocab)) {
    for (const [piece, id] of Object.entries(vocab)) {
      if (!isId(id)) return `model.vocab[${show(piece)}] is ${show(id)}, not an id (an integer ≥ 0)`;
    }
  } else return `model.vocab is ${show(vocab)}, not a map of pieces to ids or a list of [piece, score]`;
  if (model.merges !== undefined) {
    if (!Array.isArray(model.merges)) return `model.merges is ${show(model.merges)}, not a list`;
    // One form throughout, as the first entry says: "left right" (tokenizers before 0.20) or ["left", "right"].
    const pairs = Array.isArray(model.merges[0]);
    for (const [i, m] of model.merges.entries()) {
      const ok = pairs
        ? Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string'
        : typeof m === 'string' && m.split(' ').length === 2;
      const want = pairs ? '["left", "right"]' : '"left right" (one space)';
      if (!ok) return `model.merges[${i}] is ${show(m)}, not ${want} as the first`;
    }
  }
  if (json.added_tokens !== undefined && json.added_tokens !== null) {
    if (!Array.isArray(json.added_tokens)) return `added_tokens is ${show(json.added_tokens)}, not a list`;
    for (const [i, t] of json.added_tokens.entries()) {
      if (!isObject(t)) return `added_tokens[${i}] is ${show(t)}, not an object`;
      if (!isId(t.id)) return `added_tokens[${i}].id is ${show(t.id)}, not an id (an integer ≥ 0)`;
      if (typeof t.content !== 'string' || !t.content) {
        return `added_tokens[${i}].content is ${show(t.content)}, not a non-empty string`;
      }
    }
  }
  for (const section of Object.keys(SEQUENCE_KEYS)) {
    const p = stepProblem(section, section, json[section], 0);
    if (p) return p;
  }
  return undefined;
}

/** What is wrong with a parsed tokenizer_config.json (the keys run reads), or undefined. */
export function tokenizerConfigProblem(cfg: unknown): string | undefined {
  if (!isObject(cfg)) return `the tokenizer config is ${Array.isArray(cfg) ? 'a list' : show(cfg)}, not an object`;
  const ct = cfg.chat_template;
  if (ct !== undefined && ct !== null && typeof ct !== 'string') {
    if (!Array.isArray(ct)) return `chat_template is ${show(ct)}, not a string or a list of {name, template}`;
    for (const [i, t] of ct.entries()) {
      if (!isObject(t) || typeof t.template !== 'string') {
        return `chat_template[${i}] is ${show(t)}, not {"name": …, "template": "…"}`;
      }
    }
  }
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = cfg[k];
    if (v === undefined || v === null || typeof v === 'string') continue;
    if (!isObject(v) || typeof v.content !== 'string') return `${k} is ${show(v)}, not a string or {"content": …}`;
  }
  return undefined;
}

const count = (n: number) => n.toLocaleString('en-US');

/** A sound tokenizer.json in a line (the language server's hover): model type, ids, merges, added tokens. */
export function describeTokenizerJson(json: unknown): string {
  const j = json as { model?: { type?: unknown; vocab?: unknown; merges?: unknown }; added_tokens?: unknown };
  const vocab = j?.model?.vocab;
  const pieces = Array.isArray(vocab)
    ? vocab.length
    : vocab && typeof vocab === 'object'
      ? Object.keys(vocab).length
      : 0;
  const added = Array.isArray(j?.added_tokens) ? j.added_tokens.length : 0;
  const merges = Array.isArray(j?.model?.merges) ? `, ${count(j.model.merges.length)} merges` : '';
  const type = typeof j?.model?.type === 'string' ? j.model.type : 'tokenizer';
  return `${type} model: ${count(tokenizerIdCount(json))} ids (${count(pieces)} pieces, ${count(added)} added tokens)${merges}`;
}

/** A sound tokenizer_config.json in a line: the chat template and the special tokens run uses. */
export function describeTokenizerConfig(cfg: unknown): string {
  const c = (cfg ?? {}) as Record<string, unknown>;
  const ct = c.chat_template;
  const template =
    typeof ct === 'string'
      ? `chat template (${count(ct.length)} characters)`
      : Array.isArray(ct) && ct.length
        ? `${ct.length} chat templates`
        : 'no chat template (--chat is refused)';
  const special = ['bos_token', 'eos_token']
    .map((k) => {
      const v = c[k];
      const t = typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : undefined;
      return t === undefined ? undefined : `${k.slice(0, 3).toUpperCase()} \`${t}\``;
    })
    .filter(Boolean);
  return [template, ...special].join(' · ');
}
