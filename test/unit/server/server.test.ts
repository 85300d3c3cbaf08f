// The real language server over stdio (`apl-quant lsp --stdio`), driven by a JSON-RPC client: initialize, didOpen,
// diagnostics, didChange, hover, completion, code action, code lens, definition, the summary request, a change of
// the NPZ on disk, shutdown and exit.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import {
  createMessageConnection,
  type MessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import type {
  CodeAction,
  CodeLens,
  CompletionItem,
  Diagnostic,
  Hover,
  Location,
  MarkupContent,
} from 'vscode-languageserver-types';
import { DiagnosticCodes as C } from '../../../server/src/manifest/codes';
import { CommandIds, LspRequests, type LspResult } from '../../../server/src/protocol';
import { tempDir } from '../../helpers/tmp';

const ROOT = join(__dirname, '../../..');
const FIX = join(ROOT, 'test/fixtures/manifests');
const TIMEOUT_MS = 30_000;

interface Published {
  uri: string;
  version?: number;
  diagnostics: Diagnostic[];
}

let dir: string;
let child: ChildProcess;
let conn: MessageConnection;
let uri: string;
let text: string;
const published: Published[] = [];
const listeners: (() => void)[] = [];

/** Resolves with the first publication (already received or future) that satisfies `pred`; bounded. */
function diagnosticsWhere(pred: (p: Published) => boolean, from = 0): Promise<Published> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no matching diagnostics in time')), TIMEOUT_MS);
    const check = () => {
      const hit = published.slice(from).find(pred);
      if (hit) {
        clearTimeout(timer);
        listeners.splice(listeners.indexOf(check), 1);
        resolve(hit);
      }
    };
    listeners.push(check);
    check();
  });
}

function positionOf(t: string, needle: string, after?: string) {
  const i = t.indexOf(needle, after ? t.indexOf(after) : 0);
  assert.ok(i >= 0, needle);
  const before = t.slice(0, i).split('\n');
  return { line: before.length - 1, character: before[before.length - 1].length };
}

before(async () => {
  dir = tempDir('apl-lsp-');
  for (const f of ['tiny_manifest_q4.json', 'tiny_quantized_q4.npz', 'tiny_accuracy_q4.json'])
    copyFileSync(join(FIX, f), join(dir, f));
  text = readFileSync(join(dir, 'tiny_manifest_q4.json'), 'utf8');
  uri = pathToFileURL(join(dir, 'tiny_manifest_q4.json')).href;
  child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server/src/cli.ts'), 'lsp', '--stdio'], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  conn.onNotification('textDocument/publishDiagnostics', (p: Published) => {
    published.push(p);
    for (const l of [...listeners]) l();
  });
  conn.listen();
});

after(() => {
  conn?.dispose();
  if (child && child.exitCode === null) child.kill();
});

describe('language server over stdio', () => {
  it('initializes with the features it serves', async () => {
    const r = (await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} })) as {
      capabilities: Record<string, unknown>;
    };
    for (const k of [
      'hoverProvider',
      'completionProvider',
      'documentSymbolProvider',
      'foldingRangeProvider',
      'codeLensProvider',
      'codeActionProvider',
      'definitionProvider',
    ])
      assert.ok(r.capabilities[k], k);
    await conn.sendNotification('initialized', {});
  });

  it('didOpen of the valid fixture publishes no diagnostics', async () => {
    await conn.sendNotification('textDocument/didOpen', {
      textDocument: { uri, languageId: 'apl-manifest', version: 1, text },
    });
    const p = await diagnosticsWhere((x) => x.uri === uri && x.version === 1);
    assert.deepEqual(p.diagnostics, []);
  });

  it('didChange to a wrong bit_width publishes apl.bits-mismatch on the value', async () => {
    const at = positionOf(text, '"bit_width": 4', '"name": "model.layers.0.self_attn.q_proj.weight"');
    const start = { line: at.line, character: at.character + '"bit_width": '.length };
    await conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version: 2 },
      contentChanges: [{ range: { start, end: { line: start.line, character: start.character + 1 } }, text: '2' }],
    });
    const p = await diagnosticsWhere((x) => x.uri === uri && x.version === 2);
    assert.deepEqual(
      p.diagnostics.map((d) => d.code),
      [C.bitsMismatch],
    );
    assert.deepEqual(p.diagnostics[0].range, { start, end: { line: start.line, character: start.character + 1 } });
  });

  it('offers the quick fix for it', async () => {
    const p = await diagnosticsWhere((x) => x.uri === uri && x.version === 2);
    const actions = (await conn.sendRequest('textDocument/codeAction', {
      textDocument: { uri },
      range: p.diagnostics[0].range,
      context: { diagnostics: p.diagnostics },
    })) as CodeAction[];
    assert.equal(actions[0].title, 'Set bit_width to 4');
    assert.equal(actions[0].edit?.changes?.[uri]?.[0].newText, '4');
  });

  it('hovers a weight with its card and the report verdict', async () => {
    const h = (await conn.sendRequest('textDocument/hover', {
      textDocument: { uri },
      position: positionOf(text, '"group_size"', '"name": "model.layers.1.mlp.up_proj.weight"'),
    })) as Hover;
    assert.match((h.contents as MarkupContent).value, /Elements per group/);
    const card = (await conn.sendRequest('textDocument/hover', {
      textDocument: { uri },
      position: positionOf(text, 'groupwise_int', '"name": "model.layers.1.mlp.up_proj.weight"'),
    })) as Hover;
    assert.match(
      (card.contents as MarkupContent).value,
      /model\.layers\.1\.mlp\.up_proj\.weight[\s\S]*\[32, 16\][\s\S]*PASS/,
    );
  });

  it('completes NPZ member names', async () => {
    const pos = positionOf(text, 'model_layers_1_mlp_up_proj_weight_q4.npy"');
    const items = (await conn.sendRequest('textDocument/completion', {
      textDocument: { uri },
      position: pos,
    })) as CompletionItem[];
    assert.ok(items.some((i) => i.label === 'model_layers_1_mlp_up_proj_weight_q4.npy'));
  });

  it('code lens, definition and the summary request point at the NPZ and the report', async () => {
    const lenses = (await conn.sendRequest('textDocument/codeLens', { textDocument: { uri } })) as CodeLens[];
    const npzUri = pathToFileURL(join(dir, 'tiny_quantized_q4.npz')).href;
    assert.ok(lenses.some((l) => l.command?.command === CommandIds.inspectNpz && l.command.arguments?.[0] === npzUri));
    assert.ok(lenses.some((l) => l.command?.command === CommandIds.openAccuracyReport));
    const loc = (await conn.sendRequest('textDocument/definition', {
      textDocument: { uri },
      position: positionOf(text, 'model_layers_1_mlp_up_proj_weight_q4.npy"'),
    })) as Location;
    assert.equal(loc.uri, npzUri);
    const r = LspRequests.manifestSummary;
    const s = (await conn.sendRequest(r.method, { uri })) as LspResult<typeof r>;
    assert.ok(s, 'a summary for the open document');
    assert.equal(s.weights, 21);
    assert.equal(s.verdict, 'pass');
  });

  /** A fresh folder with its own copy of the fixture, opened in the server: it has read nothing of it yet. */
  async function openCopy(prefix: string): Promise<{ uri: string; npzUri: string; close: () => Promise<void> }> {
    const d = tempDir(prefix);
    for (const f of ['tiny_manifest_q4.json', 'tiny_quantized_q4.npz']) copyFileSync(join(FIX, f), join(d, f));
    const u = pathToFileURL(join(d, 'tiny_manifest_q4.json')).href;
    await conn.sendNotification('textDocument/didOpen', {
      textDocument: { uri: u, languageId: 'apl-manifest', version: 1, text },
    });
    const close = () => conn.sendNotification('textDocument/didClose', { textDocument: { uri: u } });
    return { uri: u, npzUri: pathToFileURL(join(d, 'tiny_quantized_q4.npz')).href, close };
  }

  it('definition right after didOpen (nothing else asked first) already points at the NPZ', async () => {
    // The definition must load the manifest's files itself rather than find them only after validation or a code
    // lens did.
    const c = await openCopy('apl-lsp-def-');
    const loc = (await conn.sendRequest('textDocument/definition', {
      textDocument: { uri: c.uri },
      position: positionOf(text, 'model_layers_1_mlp_up_proj_weight_q4.npy"'),
    })) as Location | null;
    assert.equal(loc?.uri, c.npzUri);
    await c.close();
  });

  it('definition asked while another request is still reading the files waits for that read', async () => {
    // The code lens starts the load (st.files is set before the NPZ is read); the definition, sent before that
    // read ends, must wait for it instead of answering from a half-loaded state.
    const c = await openCopy('apl-lsp-def2-');
    const lens = conn.sendRequest('textDocument/codeLens', { textDocument: { uri: c.uri } });
    const def = conn.sendRequest('textDocument/definition', {
      textDocument: { uri: c.uri },
      position: positionOf(text, 'model_layers_1_mlp_up_proj_weight_q4.npy"'),
    });
    const [, loc] = (await Promise.all([lens, def])) as [unknown, Location | null];
    assert.equal(loc?.uri, c.npzUri);
    await c.close();
  });

  it('re-checks when the NPZ disappears from disk', async () => {
    const from = published.length;
    unlinkSync(join(dir, 'tiny_quantized_q4.npz'));
    const p = await diagnosticsWhere((x) => x.uri === uri && x.diagnostics.some((d) => d.code === C.npzMissing), from);
    assert.ok(p.diagnostics.some((d) => d.code === C.npzMissing));
  });

  it('shuts down and exits cleanly', async () => {
    await conn.sendRequest('shutdown');
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await conn.sendNotification('exit');
    assert.equal(await exited, 0);
  });
});
