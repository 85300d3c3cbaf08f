// `apl-quant validate <manifest> [--json]`: the language server's checks (schema, NPZ cross-checks, accuracy
// report) from the command line. One line per diagnostic, `file:line:col severity code message`; exit 1 on errors.
import { relative } from 'node:path';
import { DiagnosticSeverity } from 'vscode-languageserver-types';
import { readRegularFile } from '../formats/source';
import { getLanguageService, type ManifestState } from '../manifest';
import { CliError, parseArgs } from './common';

const USAGE = `usage: apl-quant validate <manifest.json> [--json]

Checks a manifest against its schema and against the NPZ (and accuracy report) it names.
Prints one line per problem, file:line:col severity code message, then a last line on stdout: "ok", or the counts,
and the accuracy report's verdict. Exits 1 when there are errors, 3 when the accuracy report's verdict is FAIL
(the manifest is valid, the quantized weights are not within tolerance), 0 otherwise.
  --json   print the diagnostics as a JSON array instead`;

/** Exit status when the manifest is valid but its accuracy report fails (as \`apl-quant convert --strict\`). */
export const ACCURACY_FAIL_EXIT = 3;

const SEVERITY: Record<DiagnosticSeverity, string> = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};
/** Manifests larger than this are refused (the language server's hostile-input bound is far below). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

export async function run(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, [], ['json', 'help']);
  if (flags.has('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`expected one manifest file\n${USAGE}`, 2);
  const file = positionals[0];
  let text: string;
  try {
    text = (await readRegularFile(file, MAX_MANIFEST_BYTES)).toString('utf8');
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const service = getLanguageService();
  const state: ManifestState = { doc: service.parseManifest(text), path: file };
  await service.loadFiles(state);
  const diagnostics = service.doValidation(state);
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length;
  const verdict = service.getSummary(state).verdict;
  const shown = relative(process.cwd(), file) || file;
  if (flags.has('json')) {
    const out = diagnostics.map((d) => ({
      file: shown,
      line: d.range.start.line + 1,
      col: d.range.start.character + 1,
      endLine: d.range.end.line + 1,
      endCol: d.range.end.character + 1,
      severity: SEVERITY[d.severity ?? DiagnosticSeverity.Error],
      code: d.code,
      message: String(d.message),
    }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } else {
    const lines = diagnostics.map(
      (d) =>
        `${shown}:${d.range.start.line + 1}:${d.range.start.character + 1} ${SEVERITY[d.severity ?? DiagnosticSeverity.Error]} ${d.code} ${String(d.message).replace(/\s*\n\s*/g, ' ')}`,
    );
    if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
    const warnings = diagnostics.length - errors;
    const counts = errors || warnings ? `${errors} error(s), ${warnings} warning(s) or note(s)` : '';
    const accuracy = verdict === 'fail' ? 'accuracy report: FAIL' : verdict === 'pass' ? 'accuracy report: pass' : '';
    const ok = !errors && verdict !== 'fail';
    process.stdout.write(`${shown}: ${[ok && !counts ? 'ok' : counts, accuracy].filter(Boolean).join('; ')}\n`);
  }
  return errors ? 1 : verdict === 'fail' ? ACCURACY_FAIL_EXIT : 0;
}
