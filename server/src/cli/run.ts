// apl-quant run <manifest>: generate text with a converted model (or its source checkpoint with --float).
import { createInterface } from 'node:readline';
import type { ForwardModel } from '../../../native/forward-types';
import { writeNpyFile } from '../formats/npy';
import type { RunEvent, RunStopReason } from '../protocol';
import { RunError } from '../run/config';
import { createForward } from '../run/engine';
import { type LoadedModel, loadModel } from '../run/load';
import { createSampler } from '../run/sampler';
import { type ChatMessage, StreamDecoder } from '../run/tokenizer';
import { CliError, npyOutput, parseArgs } from './common';

const HELP = `usage: apl-quant run <manifest> [--prompt TEXT | --prompt-tokens 1,2,3] [options]

Runs the quantized model the manifest describes (the NPZ and the tokenizer files beside it; no network).
  --prompt TEXT          the prompt (tokenized with the model's tokenizer, BOS added as the tokenizer does)
  --prompt-tokens IDS    the prompt as comma-separated token ids (bypasses the tokenizer)
  --chat                 apply the model's chat template; without --prompt on a terminal, an interactive chat
  --system TEXT          a system message for --chat
  --max-tokens N         tokens to generate (default 256; 0 generates nothing)
  --temperature T        0 is greedy (default 0.8)
  --top-p P              nucleus sampling (default 0.95)
  --seed S               sampling seed (default: random)
  --float                run the source checkpoint's float weights instead (found from the manifest)
  --backend auto|cpu|gpu where the forward pass runs (default auto)
  --threads T            CPU threads
  --ctx N                KV cache positions (default: prompt + --max-tokens; interactive chat: the model's
                         context length); at most the model's context length
  --kv f16|f32           KV cache storage (default f16: half the memory; attention reads it in float32)
  --dump-logits FILE.npy write float32 logits [prompt tokens, vocab] of every prompt position
  --json                 one JSON event per line: prompt, token…, done
Streams the text as it is generated; Ctrl+C stops cleanly. Prints prompt and decode tokens/s at the end.`;

const VALUED = [
  'prompt',
  'prompt-tokens',
  'system',
  'max-tokens',
  'temperature',
  'top-p',
  'seed',
  'backend',
  'threads',
  'dump-logits',
  'ctx',
  'kv',
];
const BOOLEAN = ['chat', 'float', 'json', 'help'];

export interface RunArgs {
  manifest: string;
  prompt?: string;
  promptTokens?: number[];
  chat: boolean;
  system?: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  float: boolean;
  backend: 'auto' | 'cpu' | 'gpu';
  threads?: number;
  dumpLogits?: string;
  json: boolean;
  /** KV cache positions (--ctx); undefined: what the prompt and --max-tokens need. */
  ctx?: number;
  kv: 'f16' | 'f32';
}

function numberArg(v: string | undefined, flag: string, ok: (n: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new CliError(`--${flag} must be ${what} (got ${v})`, 2);
  return n;
}

/** Parses the command line (exported for tests). */
export function parseRunArgs(argv: string[]): RunArgs | 'help' {
  if (argv.includes('-h')) return 'help';
  const { positionals, flags } = parseArgs(argv, VALUED, [...VALUED, ...BOOLEAN]);
  if (flags.has('help')) return 'help';
  if (positionals.length !== 1) {
    throw new CliError(
      positionals.length ? `expected one manifest, got ${positionals.join(' ')}` : 'which manifest?',
      2,
    );
  }
  const str = (k: string) => {
    const v = flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const isInt = (n: number) => Number.isInteger(n) && n >= 0;
  if (flags.has('prompt') && flags.has('prompt-tokens')) throw new CliError('--prompt and --prompt-tokens conflict', 2);
  let promptTokens: number[] | undefined;
  const pt = str('prompt-tokens');
  if (pt !== undefined) {
    const parts = pt.split(/[,\s]+/).filter(Boolean);
    if (!parts.length || parts.some((p) => !/^\d+$/.test(p))) {
      throw new CliError(
        `--prompt-tokens must be comma-separated non-negative integers (got ${JSON.stringify(pt)})`,
        2,
      );
    }
    promptTokens = parts.map(Number);
    if (flags.has('chat')) throw new CliError('--chat needs a text --prompt, not --prompt-tokens', 2);
  }
  const backend = str('backend') ?? 'auto';
  if (!['auto', 'cpu', 'gpu'].includes(backend))
    throw new CliError(`--backend must be auto, cpu or gpu (got ${backend})`, 2);
  const kv = str('kv') ?? 'f16';
  if (kv !== 'f16' && kv !== 'f32') throw new CliError(`--kv must be f16 or f32 (got ${kv})`, 2);
  const dump = str('dump-logits');
  if (dump !== undefined) npyOutput('dump-logits', dump);
  return {
    manifest: positionals[0],
    prompt: str('prompt'),
    promptTokens,
    chat: flags.has('chat'),
    system: str('system'),
    maxTokens: numberArg(str('max-tokens'), 'max-tokens', isInt, 'a non-negative integer') ?? 256,
    temperature: numberArg(str('temperature'), 'temperature', (n) => n >= 0, 'a number ≥ 0') ?? 0.8,
    topP: numberArg(str('top-p'), 'top-p', (n) => n > 0 && n <= 1, 'in (0, 1]') ?? 0.95,
    seed: numberArg(str('seed'), 'seed', isInt, 'a non-negative integer') ?? (Math.random() * 2 ** 32) >>> 0,
    float: flags.has('float'),
    backend: backend as RunArgs['backend'],
    threads: numberArg(str('threads'), 'threads', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'),
    dumpLogits: dump,
    json: flags.has('json'),
    ctx: numberArg(str('ctx'), 'ctx', (n) => Number.isInteger(n) && n >= 1, 'a positive integer'),
    kv,
  };
}

interface Io {
  out(s: string): void;
  err(s: string): void;
}

/** The prompt's ids: given, or tokenized (with the chat template when --chat). */
export function promptIds(a: RunArgs, m: LoadedModel, messages?: ChatMessage[]): number[] {
  const vocab = m.config.vocabSize;
  if (a.promptTokens) {
    const bad = a.promptTokens.find((t) => t >= vocab);
    if (bad !== undefined)
      throw new RunError(`--prompt-tokens: token id ${bad} is outside the vocabulary [0, ${vocab})`);
    return a.promptTokens;
  }
  const tok = m.tokenizer;
  if (!tok) {
    throw new RunError(`${m.manifestPath}: no tokenizer beside the manifest (metadata.tokenizer); use --prompt-tokens`);
  }
  if (messages) {
    if (!tok.chatTemplate) throw new RunError(`${m.manifestPath}: the model's tokenizer config has no chat template`);
    try {
      return tok.encodeChat(messages);
    } catch (e) {
      throw new RunError(`${m.manifestPath}: chat template: ${(e as Error).message}`);
    }
  }
  return tok.encode(a.prompt ?? '', true);
}

function eosSet(m: LoadedModel): Set<number> {
  const ids = new Set<number>();
  const add = (v: unknown) => {
    if (typeof v === 'number') ids.add(v);
    else if (Array.isArray(v)) for (const x of v) if (typeof x === 'number') ids.add(x);
  };
  add(m.config.eosTokenId);
  add(m.generation?.eos_token_id);
  return ids;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** One generation: prefill, optional logits dump, decode until EOS / max tokens / context / Ctrl+C. */
export async function generate(
  a: RunArgs,
  m: LoadedModel,
  model: ForwardModel,
  ids: number[],
  io: Io,
  stopped: () => boolean,
): Promise<{ text: string; stop: RunStopReason }> {
  const ctx = Math.min(m.config.maxPositionEmbeddings, a.ctx ?? Number.POSITIVE_INFINITY);
  if (ids.length === 0) throw new RunError('the prompt is empty (no tokens)');
  if (ids.length > ctx) {
    const whose = ctx < m.config.maxPositionEmbeddings ? '--ctx' : "the model's context";
    throw new RunError(`the prompt has ${ids.length} tokens, longer than ${whose} of ${ctx}`);
  }
  const emit = (e: RunEvent) => io.out(`${JSON.stringify(e)}\n`);
  if (a.json) emit({ type: 'prompt', ids });
  const sample = createSampler({ temperature: a.temperature, topP: a.topP, seed: a.seed });
  const eos = eosSet(m);
  const decoder = m.tokenizer ? new StreamDecoder(m.tokenizer) : null;
  model.reset();
  const t0 = performance.now();
  let logits = model.forward(ids, 0, Boolean(a.dumpLogits));
  const t1 = performance.now();
  const vocab = m.config.vocabSize;
  if (a.dumpLogits) {
    await writeNpyFile(a.dumpLogits, 'float32', [ids.length, vocab], logits);
    logits = logits.subarray((ids.length - 1) * vocab);
  }
  let pos = ids.length;
  let generated = 0;
  let text = '';
  let stop: RunStopReason = 'max_tokens';
  const t2 = performance.now();
  while (generated < a.maxTokens) {
    await tick();
    if (stopped()) {
      stop = 'interrupted';
      break;
    }
    const id = sample(logits);
    if (eos.has(id)) {
      stop = 'eos';
      break;
    }
    generated++;
    const piece = decoder ? decoder.push(id) : '';
    text += piece;
    if (a.json) emit({ type: 'token', id, text: piece });
    else io.out(decoder ? piece : `${id} `);
    if (generated >= a.maxTokens) break;
    if (pos >= ctx) {
      stop = 'context';
      break;
    }
    logits = model.forward([id], pos, false);
    pos++;
  }
  const rest = decoder?.flush() ?? '';
  if (rest && !a.json) io.out(rest);
  text += rest;
  const t3 = performance.now();
  const prefillRate = ids.length / Math.max(1e-9, (t1 - t0) / 1000);
  const decodeRate = generated / Math.max(1e-9, (t3 - t2) / 1000);
  const rss = process.resourceUsage().maxRSS * 1024;
  if (a.json) {
    emit({
      type: 'done',
      prompt_tokens: ids.length,
      generated_tokens: generated,
      prefill_tokens_per_s: prefillRate,
      decode_tokens_per_s: decodeRate,
      peak_rss_bytes: rss,
      stop,
      backend: model.backend,
    });
  } else {
    if (a.maxTokens > 0) io.out('\n');
    io.err(
      `prompt: ${ids.length} tokens, ${prefillRate.toFixed(1)} tokens/s; decode: ${generated} tokens, ` +
        `${decodeRate.toFixed(1)} tokens/s (${model.backend}, ${stop === 'max_tokens' ? 'max tokens' : stop})\n`,
    );
  }
  return { text, stop };
}

async function interactive(a: RunArgs, m: LoadedModel, model: ForwardModel, io: Io, stopped: { v: boolean }) {
  const messages: ChatMessage[] = a.system ? [{ role: 'system', content: a.system }] : [];
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  io.err('Chat with the model; an empty line or Ctrl+D ends, Ctrl+C stops a reply.\n');
  // On a terminal, readline receives Ctrl+C: it stops a reply, or ends the chat at the prompt.
  let generating = false;
  rl.on('SIGINT', () => {
    if (generating) stopped.v = true;
    else rl.close();
  });
  try {
    for (;;) {
      const line = await new Promise<string | null>((r) => {
        rl.question('> ', r);
        rl.once('close', () => r(null));
      });
      if (line === null || line.trim() === '') return;
      messages.push({ role: 'user', content: line });
      stopped.v = false;
      const ids = promptIds(a, m, messages);
      generating = true;
      const r = await generate(a, m, model, ids, io, () => stopped.v).finally(() => {
        generating = false;
      });
      messages.push({ role: 'assistant', content: r.text });
    }
  } finally {
    rl.close();
  }
}

export async function run(
  argv: string[],
  io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) },
) {
  const a = parseRunArgs(argv);
  if (a === 'help') {
    io.out(`${HELP}\n`);
    return 0;
  }
  const interactiveChat = a.chat && a.prompt === undefined && Boolean(process.stdin.isTTY);
  if (a.prompt === undefined && !a.promptTokens && !interactiveChat) {
    throw new CliError('no prompt: pass --prompt TEXT or --prompt-tokens IDS (or --chat on a terminal)', 2);
  }
  const stopped = { v: false };
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1 && !interactiveChat) process.exit(130);
    stopped.v = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let m: LoadedModel;
    let model: ForwardModel;
    let once: { ids: number[] } | { error: unknown } | undefined;
    try {
      m = await loadModel(a.manifest, { float: a.float, offline: true });
      const maxPos = m.config.maxPositionEmbeddings;
      if (!interactiveChat) {
        const messages: ChatMessage[] | undefined = a.chat
          ? [
              ...(a.system ? [{ role: 'system' as const, content: a.system }] : []),
              { role: 'user', content: a.prompt! },
            ]
          : undefined;
        try {
          once = { ids: promptIds(a, m, messages) };
        } catch (error) {
          once = { error }; // reported below, as every generation error is (a JSON error event with --json)
        }
      }
      // The KV cache holds what this run needs, not the model's whole context (max_position_embeddings).
      const need = a.ctx ?? (!once ? maxPos : 'ids' in once ? Math.max(1, once.ids.length + a.maxTokens) : 1);
      model = createForward(m.config, m.weights, {
        contextLength: Math.min(maxPos, need),
        threads: a.threads,
        backend: a.backend,
        kvCache: a.kv,
      });
    } catch (e) {
      throw new CliError(((e as Error).message ?? String(e)).replace(/\s*\n\s*/g, ' '), 1);
    }
    try {
      if (!once) await interactive(a, m, model, io, stopped);
      else if ('error' in once) throw once.error;
      else await generate(a, m, model, once.ids, io, () => stopped.v);
    } catch (e) {
      const msg = ((e as Error).message ?? String(e)).replace(/\s*\n\s*/g, ' ');
      if (a.json) io.out(`${JSON.stringify({ type: 'error', message: msg } satisfies RunEvent)}\n`);
      throw new CliError(msg, 1);
    } finally {
      model.dispose();
    }
    return signals > 0 ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
