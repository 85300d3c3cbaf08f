// `apl-quant validate` on a manifest beside an NPZ and a report, each hostile in its own way: the manifest edited
// field by field and by keystrokes (lib: the manifest target's generator), the NPZ the fixture or mutated bytes,
// the report edited. Through the real main(): exit 0/1, one line per diagnostic, --json output that parses.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { tempDir } from '../../helpers/tmp';
import { runCli } from '../lib/cli';
import { NPZ_PATH, REPORT_PATH } from '../lib/fixtures';
import { applyByteOps, applyTextOps, byteOp, textOp } from '../lib/mutate';
import { Finding, type Target } from '../lib/target';
import { type ManifestInput, manifestInput } from './manifest';

interface Input {
  manifest: ManifestInput;
  npz?: string;
  report?: string;
  json: boolean;
}
const NPZ = readFileSync(NPZ_PATH);
const REPORT = readFileSync(REPORT_PATH, 'utf8');
const input: fc.Arbitrary<Input> = fc.record(
  {
    manifest: manifestInput,
    npz: fc
      .array(byteOp, { minLength: 1, maxLength: 4 })
      .map((ops) => Buffer.from(applyByteOps(NPZ, ops)).toString('base64')),
    report: fc.array(textOp, { minLength: 1, maxLength: 3 }).map((ops) => applyTextOps(REPORT, ops)),
    json: fc.boolean(),
  },
  { requiredKeys: ['manifest', 'json'] },
);

let dir = '';
const LINE = /^[^\n]+:\d+:\d+ (error|warning|info|hint) \S+ [^\n]*$/;
/** The closing summary line: `<file>: ok` or the counts, then the accuracy report's verdict when there is one. */
const SUMMARY = /^[^\n]+: (ok|\d+ error\(s\), \d+ warning\(s\) or note\(s\))?(; )?(accuracy report: (pass|FAIL))?$/;

export const target: Target<Input> = {
  name: 'validate',
  describe: 'apl-quant validate: manifest, NPZ and report beside it all hostile; exit status and output lines',
  arbitrary: () => input,
  async setup() {
    dir = tempDir('apl-fuzz-validate-');
  },
  async teardown() {
    rmSync(dir, { recursive: true, force: true });
  },
  async check(x) {
    const file = join(dir, 'tiny_manifest_q4.json');
    writeFileSync(file, x.manifest.text);
    if (x.npz) writeFileSync(join(dir, 'tiny_quantized_q4.npz'), Buffer.from(x.npz, 'base64'));
    else copyFileSync(NPZ_PATH, join(dir, 'tiny_quantized_q4.npz'));
    writeFileSync(join(dir, 'tiny_accuracy_q4.json'), x.report ?? REPORT);
    const r = await runCli(['validate', file, ...(x.json ? ['--json'] : [])]);
    if (r.code !== 0 && r.code !== 1 && r.code !== 3) throw new Finding(`validate exited ${r.code}: ${r.stderr}`);
    if (x.json) {
      let out: unknown;
      try {
        out = JSON.parse(r.stdout);
      } catch {
        throw new Finding(`--json output does not parse: ${r.stdout.slice(0, 300)}`);
      }
      if (!Array.isArray(out)) throw new Finding('--json output is not an array');
    } else {
      const lines = r.stdout.split('\n').filter(Boolean);
      const summary = lines.pop() ?? '';
      if (!SUMMARY.test(summary)) throw new Finding(`bad summary line: ${JSON.stringify(summary)}`);
      for (const l of lines) if (!LINE.test(l)) throw new Finding(`bad output line: ${JSON.stringify(l)}`);
      if (r.stderr.trim().split('\n').length !== 1)
        throw new Finding(`stderr is not one line: ${JSON.stringify(r.stderr)}`);
    }
  },
  serialize: (x) => JSON.stringify(x),
};
