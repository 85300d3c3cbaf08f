// The model's tokenizer (tokenizer.json + tokenizer_config.json, as convert keeps them beside the manifest) through
// @huggingface/tokenizers, and its chat template through @huggingface/jinja. The rendered template already holds
// the special tokens (BOS, turn markers), so it is tokenized without adding them again.
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { RunError } from './config';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * Bounds on a chat template's work: the template comes with the model (tokenizer_config.json) and is a program.
 * Real templates take a few dozen steps per message (a hundred-message chat: a few thousand); a hostile one
 * (`range(10**9)`, loops nested ten deep) would otherwise hang the process or exhaust its memory.
 */
export const MAX_TEMPLATE_STEPS = 100_000;
export const MAX_TEMPLATE_RANGE = 10_000;
/**
 * Bound on what a render may produce: 4 times the messages' text, plus 64 KiB and 1 KiB a message for the template's
 * own text (turn markers, a default system prompt). Within the step bound, a loop that repeats the messages could
 * still render tens of megabytes (10,000 copies of a 2,400-character message: 24 MB, then 3.6 s to tokenize).
 */
export const MAX_TEMPLATE_GROWTH = 4;
export const MAX_TEMPLATE_OVERHEAD = 64 * 1024;

// The interpreter has no step limit of its own: count its evaluations while one of our renders runs.
let stepsLeft: number | undefined;
const evaluate = Interpreter.prototype.evaluate;
Interpreter.prototype.evaluate = function (this: Interpreter, ...args: Parameters<Interpreter['evaluate']>) {
  if (stepsLeft !== undefined && --stepsLeft < 0) {
    throw new Error(`the chat template takes more than ${MAX_TEMPLATE_STEPS} steps (a loop that does not end?)`);
  }
  return evaluate.apply(this, args);
};

// The library's range() builds any length eagerly: while one of our renders runs, its globals get ours instead.
const setGlobal = Environment.prototype.set;
Environment.prototype.set = function (this: Environment, name: string, value: unknown) {
  return setGlobal.call(this, name, name === 'range' && stepsLeft !== undefined ? boundedRange : value);
};

/** Python's range(), refusing more than MAX_TEMPLATE_RANGE items. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (![start, stop, step].every(Number.isInteger)) throw new Error('range() arguments must be integers');
  if (step === 0) throw new Error('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > MAX_TEMPLATE_RANGE) throw new Error(`range() of ${n} items in the chat template is too long`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

/** A special token in tokenizer_config.json: a string or {"content": …}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}

export class TextTokenizer {
  private readonly tok: Tokenizer;
  readonly chatTemplate: string | undefined;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;

  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown>) {
    this.tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    const ct = tokenizerConfig.chat_template;
    // A list of named templates (newer configs): the "default" one.
    if (typeof ct === 'string') this.chatTemplate = ct;
    else if (Array.isArray(ct)) {
      const d = ct.find((t) => t && typeof t === 'object' && t.name === 'default') ?? ct[0];
      if (d && typeof d.template === 'string') this.chatTemplate = d.template;
    }
    this.bosToken = tokenText(tokenizerConfig.bos_token);
    this.eosToken = tokenText(tokenizerConfig.eos_token);
  }

  /** Token ids of `text`; `addSpecial` adds what the tokenizer's post-processor adds (BOS for Llama). */
  encode(text: string, addSpecial = true): number[] {
    const ids = this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
    // A tokenizer.json whose vocabulary lacks a piece its model produces gives undefined ids, silently.
    const bad = ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0);
    if (bad >= 0) {
      throw new RunError(
        `the tokenizer gives no valid id for token ${bad} of the text (got ${String(ids[bad])}): is tokenizer.json complete?`,
      );
    }
    return ids;
  }

  decode(ids: number[], skipSpecial = true): string {
    if (!ids.length) return '';
    return this.tok.decode(ids, { skip_special_tokens: skipSpecial });
  }

  /** The chat template rendered for `messages`, ending with the assistant's turn opened. */
  renderChat(messages: ChatMessage[], addGenerationPrompt = true): string {
    if (!this.chatTemplate) throw new Error('the tokenizer config has no chat_template');
    stepsLeft = MAX_TEMPLATE_STEPS;
    let out: string;
    try {
      out = new Template(this.chatTemplate).render({
        messages,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
        add_generation_prompt: addGenerationPrompt,
      });
    } finally {
      stepsLeft = undefined;
    }
    const given = messages.reduce((n, m) => n + m.content.length, 0);
    const limit = MAX_TEMPLATE_GROWTH * given + MAX_TEMPLATE_OVERHEAD + 1024 * messages.length;
    if (out.length > limit)
      throw new Error(
        `the chat template renders ${out.length} characters for ${given} characters of messages (at most ${limit}: a loop that repeats them?)`,
      );
    return out;
  }

  /** Token ids of a chat, the template rendered then tokenized without adding special tokens again. */
  encodeChat(messages: ChatMessage[]): number[] {
    return this.encode(this.renderChat(messages), false);
  }
}

/**
 * Turns generated ids into text as it streams: decodes the whole tail and emits what was added since, holding back
 * while the text ends in an incomplete UTF-8 sequence (U+FFFD) that the next byte-fallback token completes.
 */
export class StreamDecoder {
  private ids: number[] = [];
  private emitted = '';
  constructor(private readonly tok: TextTokenizer) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    // Decoders may strip a leading space of the first token, so only a text that extends what was emitted counts.
    const add = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : '';
    this.emitted = text;
    return add;
  }

  /** What is still held back (an incomplete sequence at the end). */
  flush(): string {
    if (!this.ids.length) return '';
    const text = this.tok.decode(this.ids);
    const add = text.startsWith(this.emitted) ? text.slice(this.emitted.length) : '';
    this.emitted = text;
    return add;
  }
}
