// The webview message handlers, host side: messages as a (compromised or buggy) webview could send them, to the
// inspector host (inspect/host.ts inspectorHost over a real InspectorSession on the fixture archive with its
// manifest beside it, or on a mutated archive). Well-formed messages with hostile fields (names that do not
// exist, negative, huge, fractional, NaN rows and columns, unknown views) and arbitrary JSON values. Every
// request gets exactly one answer, a page never carries more values than it asked for (nor than the cap), and
// nothing throws. The report panel's messages carry no data the host acts on beyond the file it already holds.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { inspectorHost } from '../../../server/src/inspect/host';
import { InspectorSession, MAX_PAGE_ELEMENTS } from '../../../server/src/inspect/session';
import type { HostToInspector, InspectorToHost } from '../../../server/src/protocol';
import { tempDir } from '../../helpers/tmp';
import { MANIFEST_PATH, NPZ_PATH, REPORT_PATH } from '../lib/fixtures';
import { applyByteOps, byteOp, hostileString } from '../lib/mutate';
import { Finding, type Target } from '../lib/target';

const NAMES = [
  'model_layers_0_self_attn_q_proj_weight_q4.npy',
  'model_layers_0_self_attn_q_proj_weight_q4_scales.npy',
  'model_embed_tokens_weight_q8.npy',
  'model_layers_0_input_layernorm_weight.npy',
  'model_layers_0_self_attn_q_proj_weight_q4',
  'nope',
  '',
];
const num = fc.oneof(
  fc.integer({ min: -2, max: 70 }),
  fc.constantFrom(-1, 0, 0.5, 1e9, 2 ** 31, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -0),
  fc.constantFrom('1', null, undefined, [], {}) as fc.Arbitrary<unknown>,
) as fc.Arbitrary<number>;
const name = fc.oneof(fc.constantFrom(...NAMES), hostileString);

const message: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant({ type: 'ready' }),
  fc.record({ type: fc.constant('selectTensor'), name }),
  fc.record({
    type: fc.constant('page'),
    requestId: num,
    name,
    view: fc.constantFrom('raw', 'dequant', 'error', 'x', undefined),
    row: num,
    rowCount: num,
    col: num,
    colCount: num,
  }),
  fc.record({ type: fc.constant('rendered'), what: fc.string(), names: fc.anything() }),
  fc.anything({ maxDepth: 2 }),
);

interface Input {
  archive?: string;
  messages: unknown[];
}
const input: fc.Arbitrary<Input> = fc.record(
  {
    archive: fc
      .array(byteOp, { minLength: 1, maxLength: 4 })
      .map((ops) => Buffer.from(applyByteOps(readFileSync(NPZ_PATH), ops)).toString('base64')),
    messages: fc.array(message, { minLength: 1, maxLength: 6 }),
  },
  { requiredKeys: ['messages'] },
);

const isRequest = (m: unknown) => {
  const t = (m as { type?: unknown })?.type;
  return t === 'ready' || t === 'selectTensor' || t === 'page';
};

let dir = '';
let fixtureSession: InspectorSession;

export const target: Target<Input> = {
  name: 'webview',
  describe: 'webview → host messages: inspectorHost over a real InspectorSession (fixture or mutated archive)',
  timeoutMs: 4000,
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-webview-');
    for (const f of [MANIFEST_PATH, NPZ_PATH, REPORT_PATH]) copyFileSync(f, join(dir, f.split('/').pop() as string));
    fixtureSession = await InspectorSession.open(join(dir, 'tiny_quantized_q4.npz'));
  },
  async teardown() {
    await fixtureSession.close();
    rmSync(dir, { recursive: true, force: true });
  },
  async check(x) {
    let session = fixtureSession;
    if (x.archive) {
      const p = join(dir, 'mutated.npz');
      writeFileSync(p, Buffer.from(x.archive, 'base64'));
      try {
        session = await InspectorSession.open(p);
      } catch (e) {
        if (/[\r\n]/.test((e as Error).message))
          throw new Finding(`open error is not one line: ${(e as Error).message}`);
        return;
      }
    }
    try {
      for (const m of x.messages) {
        const sent: HostToInspector[] = [];
        const host = inspectorHost(session, (r) => sent.push(r));
        await host(m as InspectorToHost);
        const want = isRequest(m) ? 1 : 0;
        if (sent.length !== want) throw new Finding(`${sent.length} answers to ${JSON.stringify(m)}`);
        for (const r of sent) {
          if (r.type === 'page') {
            const asked = Number((m as { rowCount: number }).rowCount) * Number((m as { colCount: number }).colCount);
            if (
              r.values.length !== r.rowCount * r.colCount ||
              r.values.length > MAX_PAGE_ELEMENTS ||
              r.values.length > asked
            )
              throw new Finding(`page of ${r.values.length} values for ${r.rowCount}×${r.colCount}, asked ${asked}`);
          }
          if (r.type === 'error' && /[\r\n]/.test(r.message))
            throw new Finding(`error answer is not one line: ${r.message}`);
          JSON.stringify(r);
        }
      }
    } finally {
      if (session !== fixtureSession) await session.close();
    }
  },
  serialize: (x) => JSON.stringify(x, (_, v) => (v === undefined ? '(undefined)' : Number.isNaN(v) ? '(NaN)' : v)),
};
