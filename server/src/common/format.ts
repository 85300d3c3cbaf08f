// Display formatting shared by every view: the webviews, the extension's pickers and progress, hover and code
// lenses, and the CLI. The one place sizes are written for people (binary units: KiB, MiB, GiB). Pure: no Node,
// DOM or editor imports (the layering test checks it), so the browser bundles import it.

/** 1536 → "1.50 KiB"; null or non-finite → "—". */
export function formatBytes(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

/**
 * Bits per weight, the one computation every view shows (CLI summary, task terminal, toast, report, code lens):
 * the NPZ file's bytes × 8 over the parameters of every tensor of the checkpoint, quantized or kept as float. It
 * is what a parameter costs on disk: packed values, scales and zero points, float tensors and the archive's
 * headers all count (docs/FORMAT.md). null when there are no parameters.
 */
export function bitsPerWeight(bytes: number, params: number): number | null {
  return params > 0 && Number.isFinite(bytes) ? (bytes * 8) / params : null;
}

/** Bits per weight as every view writes it: two decimals ("4.52"). */
export function formatBitsPerWeight(v: number | null): string {
  return v === null || !Number.isFinite(v) ? '—' : v.toFixed(2);
}

/** Compact number for tables: 4 significant digits, exponent form for very small or large magnitudes. */
export function formatNumber(v: number | null, digits = 4): string {
  if (v === null) return '—';
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(digits - 1);
  return Number(v.toPrecision(digits)).toString();
}

/** 0.1234 → "12.34 %". */
export function formatPercent(v: number | null): string {
  return v === null ? '—' : `${(v * 100).toFixed(2)} %`;
}

export function formatSeconds(s: number | null): string {
  if (s === null) return '—';
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}
