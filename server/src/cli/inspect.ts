// apl-quant inspect FILE [--stats] [--json]: the tensors of a .npz, .npy or .safetensors file.

import { formatBytes } from '../common/format';
import { FormatError } from '../formats/errors';
import { type InspectResult, inspectFile } from '../formats/inspect';
import { CliError, parseArgs } from './common';

const HELP = `usage: apl-quant inspect FILE [--stats] [--json]

Lists each tensor of a .npz, .npy or .safetensors file: name, dtype (as numpy spells it), shape and bytes.
  --stats   also min, max, mean, std and NaN/Inf counts (data is streamed in chunks)
  --json    print one JSON object: {"file", "format", "tensors": [{"name", "dtype", "shape", "bytes", "stats"}]}
A bad file exits with code 1 and one line on stderr naming the file and the problem.`;

function fmtNum(v: number | null): string {
  if (v === null) return '-';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  return Number(v.toPrecision(6)).toString();
}

/** The human-readable table. */
export function formatTable(r: InspectResult, stats: boolean): string {
  const total = r.tensors.reduce((a, t) => a + t.bytes, 0);
  const head = ['name', 'dtype', 'shape', 'bytes'];
  if (stats) head.push('min', 'max', 'mean', 'std', 'nan', 'inf');
  const rows = r.tensors.map((t) => {
    const row = [t.name, t.dtype, `[${t.shape.join(', ')}]`, String(t.bytes)];
    if (stats) {
      const s = t.stats;
      if (s) row.push(fmtNum(s.min), fmtNum(s.max), fmtNum(s.mean), fmtNum(s.std), String(s.nan), String(s.inf));
      else row.push('n/a', '', '', '', '', '');
    }
    return row;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const numeric = (i: number) => i >= 3;
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const n = r.tensors.length;
  return [
    `${r.file}: ${r.format}, ${n} tensor${n === 1 ? '' : 's'}, ${formatBytes(total)} of data`,
    line(head),
    ...rows.map(line),
  ].join('\n');
}

/** `io.out` receives stdout text (tests pass their own); errors are thrown as CliError for the dispatcher. */
export async function run(
  argv: string[],
  io: { out: (s: string) => void } = { out: (s) => process.stdout.write(s) },
): Promise<number> {
  const { positionals, flags } = parseArgs(argv, [], ['stats', 'json', 'help']);
  if (flags.has('help')) {
    io.out(`${HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new CliError(`expected one FILE\n${HELP}`.split('\n')[0], 2);
  const stats = flags.has('stats');
  let r: InspectResult;
  try {
    r = await inspectFile(positionals[0], { stats });
  } catch (e) {
    if (e instanceof FormatError) throw new CliError(e.message.replace(/\s*\n\s*/g, ' '), 1);
    throw new CliError(`${positionals[0]}: ${((e as Error)?.message ?? String(e)).replace(/\s*\n\s*/g, ' ')}`, 1);
  }
  if (flags.has('json')) {
    const out = {
      file: r.file,
      format: r.format,
      tensors: r.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        bytes: t.bytes,
        ...(stats ? { stats: t.stats ?? null } : {}),
      })),
    };
    io.out(`${JSON.stringify(out)}\n`);
  } else io.out(`${formatTable(r, stats)}\n`);
  return 0;
}
