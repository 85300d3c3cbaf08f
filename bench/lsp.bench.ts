// Language server benchmark: a 1,000-weight manifest beside its NPZ (about 21,000 lines). Measures, in one run:
//   - validation in-process (parse + schema + NPZ cross-checks), the pure path the server runs on every change;
//   - the real server over stdio: time from didChange to publishDiagnostics, and hover round trips;
//   - hover in-process;
//   - baselines on the same text: vscode-json-languageservice (parse + validate against the schema) and plain
//     jsonc-parser + ajv (the two reference figures).
// Figures are printed as medians and as ratios against vscode-json-languageservice measured in this run.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Ajv2020 from 'ajv/dist/2020';
import { getNodeValue, parseTree } from 'jsonc-parser';
import { getLanguageService } from 'vscode-json-languageservice';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-jsonrpc/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import schema from '../schemas/manifest.schema.json';
import { memberNames } from '../server/src/formats/manifest';
import { NpzWriter } from '../server/src/formats/npz';
import { parseManifest } from '../server/src/manifest/document';
import { loadNpzIndex } from '../server/src/manifest/files';
import { hover } from '../server/src/manifest/hover';
import { validateDoc } from '../server/src/manifest/validate';

const ROOT = join(__dirname, '..');
const OUT = join(ROOT, 'bench/out/lsp');
const RUNS = Number(process.env.LSP_BENCH_RUNS ?? 30);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function makeFixture(): Promise<{ manifestPath: string; text: string }> {
  mkdirSync(OUT, { recursive: true });
  const hidden = 64;
  const inter = 128;
  const vocab = 256;
  const layers = 111; // 111 × 9 + embeddings = 1,000 weights
  const tensors: [string, number[], number | null][] = [['model.embed_tokens.weight', [vocab, hidden], 8]];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    tensors.push(
      [`${p}input_layernorm.weight`, [hidden], null],
      [`${p}self_attn.q_proj.weight`, [hidden, hidden], 4],
      [`${p}self_attn.k_proj.weight`, [hidden / 4, hidden], 4],
      [`${p}self_attn.v_proj.weight`, [hidden / 4, hidden], 4],
      [`${p}self_attn.o_proj.weight`, [hidden, hidden], 4],
      [`${p}post_attention_layernorm.weight`, [hidden], null],
      [`${p}mlp.gate_proj.weight`, [inter, hidden], 4],
      [`${p}mlp.up_proj.weight`, [inter, hidden], 4],
      [`${p}mlp.down_proj.weight`, [hidden, inter], 4],
    );
  }
  const group = 32;
  const npzPath = join(OUT, 'bench_quantized_q4.npz');
  const w = await NpzWriter.create(npzPath);
  const weights = [];
  for (const [name, shape, bits] of tensors) {
    const rows = shape.length === 1 ? 1 : shape[0];
    const cols = shape[shape.length - 1];
    const names = memberNames(name, bits);
    if (bits === null) {
      await w.addArray(names.q, { dtype: 'float16', shape }, new Uint8Array(rows * cols * 2));
      weights.push({
        name,
        shape,
        bit_width: 16,
        q: names.q,
        q_scales: null,
        q_zero_point: null,
        quantization: { type: 'none', bits: 16, method: 'none' },
        source: { tensor: name, dtype: 'BF16' },
        layer: /layers\.(\d+)\./.test(name) ? Number(/layers\.(\d+)\./.exec(name)![1]) : undefined,
      });
      continue;
    }
    const groups = Math.ceil(cols / group);
    await w.addArray(
      names.q,
      { dtype: 'uint8', shape: [rows, Math.ceil((cols * bits) / 8)] },
      new Uint8Array(rows * Math.ceil((cols * bits) / 8)),
    );
    await w.addArray(names.q_scales!, { dtype: 'float16', shape: [rows, groups] }, new Uint8Array(rows * groups * 2));
    await w.addArray(
      names.q_zero_point!,
      { dtype: 'float16', shape: [rows, groups] },
      new Uint8Array(rows * groups * 2),
    );
    weights.push({
      name,
      shape,
      bit_width: bits,
      q: names.q,
      q_scales: names.q_scales,
      q_zero_point: names.q_zero_point,
      quantization: { type: 'groupwise_int', bits, method: 'asymmetric', group_size: group, scale_dtype: 'float16' },
      source: { tensor: name, dtype: 'BF16' },
      layer: /layers\.(\d+)\./.test(name) ? Number(/layers\.(\d+)\./.exec(name)![1]) : undefined,
    });
  }
  await w.close();
  const manifest = {
    format_version: '2',
    model: {
      name: 'bench',
      family: 'llama',
      hidden_dim: hidden,
      intermediate_size: inter,
      num_layers: layers,
      num_heads: 4,
      num_kv_heads: 1,
      vocab_size: vocab,
    },
    weights,
    metadata: { npz: 'bench_quantized_q4.npz', created_by: 'apl-quant bench' },
  };
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  const manifestPath = join(OUT, 'bench_manifest_q4.json');
  writeFileSync(manifestPath, text);
  return { manifestPath, text };
}

/** A different text each run: one bit_width changes back and forth (same length, always valid). */
function variant(text: string, i: number): string {
  return text.replace('"created_by": "apl-quant bench"', `"created_by": "apl-quant bench ${i % 10}"`);
}

async function main() {
  const { manifestPath, text } = await makeFixture();
  const lines = text.split('\n').length;
  const npz = await loadNpzIndex(join(OUT, 'bench_quantized_q4.npz'));
  if ('problem' in npz) throw new Error(npz.message);
  console.log(`manifest: ${lines} lines, ${(text.length / 1024).toFixed(0)} KiB, ${npz.members.size} NPZ members`);

  // 1. In-process: the server's per-change work.
  const full: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const t = variant(text, i);
    const t0 = performance.now();
    const ds = validateDoc(parseManifest(t), { npz });
    const dt = performance.now() - t0;
    if (ds.length) throw new Error(`unexpected diagnostics: ${JSON.stringify(ds[0])}`);
    if (i >= 3) full.push(dt);
  }

  // 2. Baseline: vscode-json-languageservice, same text, same schema.
  const ls = getLanguageService({});
  ls.configure({
    validate: true,
    allowComments: false,
    schemas: [{ uri: 'apl://manifest.schema.json', fileMatch: ['*'], schema: schema as object }],
  });
  const jls: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const doc = TextDocument.create('file:///b/bench_manifest_q4.json', 'json', i, variant(text, i));
    const t0 = performance.now();
    const jd = ls.parseJSONDocument(doc);
    await ls.doValidation(doc, jd);
    const dt = performance.now() - t0;
    if (i >= 3) jls.push(dt);
  }

  // 3. Baseline: jsonc-parser + ajv.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(schema as object);
  const plain: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const t = variant(text, i);
    const t0 = performance.now();
    const root = parseTree(t, []);
    validate(getNodeValue(root!));
    const dt = performance.now() - t0;
    if (i >= 3) plain.push(dt);
  }

  // 4. Hover in-process on a cached parse.
  const doc = parseManifest(text);
  const hovers: number[] = [];
  for (let i = 0; i < RUNS * 10; i++) {
    const at = text.indexOf(`model.layers.${(i * 7) % 111}.mlp.up_proj.weight`);
    const t0 = performance.now();
    const h = hover(doc, at + 3, { npz });
    hovers.push(performance.now() - t0);
    if (!h) throw new Error('no hover');
  }

  // 4b. The first hover after an edit pays for the offsets tree (the server builds it in an idle moment).
  const firstHovers: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = variant(text, i);
    const d = parseManifest(t);
    const t0 = performance.now();
    hover(d, t.indexOf('model.layers.50.mlp.up_proj.weight') + 3, { npz });
    firstHovers.push(performance.now() - t0);
  }

  // 5. The real server over stdio.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server/src/cli.ts'), 'lsp', '--stdio'], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.listen();
  const uri = pathToFileURL(manifestPath).href;
  let waiting: { version: number; resolve: () => void } | undefined;
  conn.onNotification('textDocument/publishDiagnostics', (p: { version?: number; diagnostics: unknown[] }) => {
    if (waiting && p.version === waiting.version) waiting.resolve();
  });
  const diagnosed = (version: number) => new Promise<void>((resolve) => (waiting = { version, resolve }));
  await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  conn.sendNotification('initialized', {});
  let wait = diagnosed(1);
  conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'apl-manifest', version: 1, text },
  });
  await wait;
  const server: number[] = [];
  for (let v = 2; v < RUNS + 5; v++) {
    const t = variant(text, v);
    wait = diagnosed(v);
    const t0 = performance.now();
    conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: v },
      contentChanges: [{ text: t }],
    });
    await wait;
    if (v >= 5) server.push(performance.now() - t0);
  }
  // Typing: incremental one-character edits (what editors send), each answered with diagnostics.
  const typing: number[] = [];
  let cur = variant(text, RUNS + 4);
  const digitAt = cur.indexOf('"apl-quant bench ') + '"apl-quant bench '.length;
  const digitPos = parseManifest(cur).lines.positionAt(digitAt);
  for (let v = RUNS + 5; v < 2 * RUNS + 8; v++) {
    const ch = String(v % 10);
    wait = diagnosed(v);
    const t0 = performance.now();
    conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: v },
      contentChanges: [
        { range: { start: digitPos, end: { line: digitPos.line, character: digitPos.character + 1 } }, text: ch },
      ],
    });
    await wait;
    if (v >= RUNS + 8) typing.push(performance.now() - t0);
    cur = cur.slice(0, digitAt) + ch + cur.slice(digitAt + 1);
  }
  const serverHover: number[] = [];
  const last = cur;
  const li = parseManifest(last).lines;
  for (let i = 0; i < RUNS; i++) {
    const pos = li.positionAt(last.indexOf(`model.layers.${(i * 7) % 111}.mlp.up_proj.weight`) + 3);
    const t0 = performance.now();
    await conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: pos });
    serverHover.push(performance.now() - t0);
  }
  await conn.sendRequest('shutdown');
  conn.sendNotification('exit');
  await new Promise((r) => child.on('exit', r));
  conn.dispose();

  const base = median(jls);
  const row = (label: string, xs: number[]) =>
    console.log(
      `${label.padEnd(58)} ${ms(median(xs)).padStart(10)}   ${(median(xs) / base).toFixed(2)}× json-languageservice`,
    );
  console.log(`\nmedians of ${RUNS} runs`);
  row('vscode-json-languageservice parse + validate (baseline)', jls);
  row('jsonc-parser + ajv (no ranges, no NPZ)', plain);
  row('apl: full diagnostics in-process (syntax+schema+NPZ)', full);
  row('apl: server over stdio, didChange → publishDiagnostics', server);
  row('apl: server over stdio, one-character edit → diagnostics', typing);
  row('apl: hover in-process', hovers);
  row('apl: first hover after an edit, in-process (builds the tree)', firstHovers);
  row('apl: hover over stdio (round trip)', serverHover);
  console.log('targets: full diagnostics ≤ 25 ms median, hover ≤ 5 ms');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
