// How one value is written in the inspector's grid cell: as many significant digits as its dtype holds (float16
// about 3.3, bfloat16 about 2.4, float32 about 7), never more characters than the cell shows, and never cut: the
// exponent of a small or large number is always kept (`-1.526e-5`, not `-1.52588…`).

/** Significant decimal digits worth showing for a dtype; undefined for integer dtypes (shown exactly). */
export function significantDigits(dtype: string): number | undefined {
  switch (dtype) {
    case 'float8_e4m3fn':
    case 'float8_e5m2':
      return 2;
    case 'bfloat16':
      return 3;
    case 'float16':
      return 4;
    case 'float32':
      return 7;
    case 'float64':
      return 15;
    default:
      return /^(u?int|bool)/.test(dtype) ? undefined : 7;
  }
}

/** 1.500e-5 → 1.5e-5, 2.000e+7 → 2e7: the mantissa's trailing zeros and the exponent's '+' dropped. */
function trimExponential(s: string): string {
  const [m, e] = s.split('e');
  const mant = m.includes('.') ? m.replace(/\.?0+$/, '') : m;
  return `${mant}e${Number(e)}`;
}

/**
 * `v` in at most `maxChars` characters (10 fit a grid cell) with at most the dtype's significant digits: plain
 * notation for 1e-4 ≤ |v| < 1e6, else scientific with its exponent whole. Integers of integer dtypes are exact when
 * they fit, else scientific.
 */
export function formatCell(v: number, dtype = 'float64', maxChars = 10): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Inf' : '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const digits = significantDigits(dtype);
  if (digits === undefined && Number.isInteger(v) && String(v).length <= maxChars) return String(v);
  const a = Math.abs(v);
  const plain = a >= 1e-4 && a < 1e6;
  let best = '';
  for (let p = Math.min(digits ?? 15, 15); p >= 1; p--) {
    best = plain ? Number(v.toPrecision(p)).toString() : trimExponential(v.toExponential(p - 1));
    if (best.length <= maxChars) return best;
  }
  return best;
}
