// What a user should know about a bit width before converting, and what to try after a failed verdict. 1-bit and
// 2-bit weights of a real model reach about 60 % and 32 % relative error, above the guide's tolerances (50 % and
// 20 %): every weight fails by design. The bit picker, the CLI summary, the report page and the toast say so here.
// Pure: no Node or DOM APIs (the report webview imports it).

/** The relative weight error each bit width typically reaches on real checkpoints (measured on TinyLlama). */
export const TYPICAL_REL_ERROR: Readonly<Record<number, number>> = Object.freeze({
  1: 0.6,
  2: 0.32,
  4: 0.08,
  8: 0.005,
});

const pct = (v: number) => `${Math.round(v * 100)} %`;

/** A bit width whose typical error is above its tolerance: the warning the bit picker shows, else undefined. */
export function bitWidthCaveat(bits: number, tolerance: number | undefined): string | undefined {
  const typical = TYPICAL_REL_ERROR[bits];
  if (typical === undefined || tolerance === undefined || typical <= tolerance) return undefined;
  return `fails by design: about ${pct(typical)} error, above the ${pct(tolerance)} tolerance`;
}

export interface VerdictFacts {
  bits: number | null;
  pass: boolean | null;
  group_size?: number | string | null;
  mode?: string | null;
  /** The tolerance at `bits`. */
  tolerance: number | null;
}

/** What to try instead after a failed verdict (undefined when it passed or says nothing). */
export function failureAdvice(r: VerdictFacts): string | undefined {
  if (r.pass !== false) return undefined;
  const typical = r.bits === null ? undefined : TYPICAL_REL_ERROR[r.bits];
  if (r.bits !== null && typical !== undefined && r.tolerance !== null && typical > r.tolerance) {
    const tol = Math.min(0.95, Math.ceil((typical * 1.15) / 0.05) * 0.05);
    return (
      `${r.bits}-bit weights reach about ${pct(typical)} relative error, above the ${pct(r.tolerance)} tolerance: ` +
      `every weight fails by design. Try 4 bits (within 10 %), or accept the error with --tolerance ${r.bits}=${tol.toFixed(2)}.`
    );
  }
  const tips: string[] = [];
  if (typeof r.group_size !== 'number' || r.group_size > 32) tips.push('a smaller group size (--group-size 32)');
  if (r.mode && r.mode !== 'optimized') tips.push('--mode optimized');
  if (r.bits !== null && r.bits < 8) tips.push(`more bits (${r.bits < 4 ? 4 : 8})`);
  return tips.length ? `Some weights are over the tolerance. Try ${tips.join(', or ')}.` : undefined;
}
