// The quantized weights of an archive with a manifest beside it: dequantized rows (the engine's dequantization),
// unpacked codes, the source checkpoint's float rows, and the figures the inspector shows for a q member — its
// dequantized weight and, when the source is found, the error (dequantized − source): statistics, histogram and
// heat map on the same sample.
import { compareMetrics, decodeInto, dequantize, type ElementDType } from '../../../native/index';
import type { Manifest } from '../formats/manifest';
import { groupsPerRow, packedRowBytes } from '../formats/manifest';
import type { NpyHeader } from '../formats/npy';
import { type Checkpoint, toF32 } from '../formats/safetensors';
import type { InspectorTensor } from '../protocol';
import { openSourceCheckpoint, quantizedWeight } from './dequant';
import { kquantMembers, kquantRows } from './dequant-kquant';
import type { MemberReader } from './reader';
import { computeStats, downsample2d, samplePlan } from './stats';
import { cutColumns } from './values';

/** At most this many values are read for a tensor's statistics, histogram and preview. */
export const MAX_SAMPLE_ELEMENTS = 1 << 20;

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class QuantizedMembers {
  private source?: Promise<{ checkpoint: Checkpoint | null; detail: string }>;

  constructor(
    private readonly reader: MemberReader,
    readonly manifest: { path: string; manifest: Manifest } | null,
  ) {}

  async close(): Promise<void> {
    const src = this.source ? await this.source : null;
    await src?.checkpoint?.close();
  }

  /** The source checkpoint the manifest names (dequant.ts openSourceCheckpoint), opened on first use. */
  sourceCheckpoint(): Promise<{ checkpoint: Checkpoint | null; detail: string }> {
    this.source ??= openSourceCheckpoint(this.manifest);
    return this.source;
  }

  info(name: string) {
    return this.manifest ? quantizedWeight(this.manifest.manifest, name) : undefined;
  }

  /** The source tensor name of a quantized member. */
  sourceName(name: string): string | undefined {
    const qi = this.info(name);
    return qi && (qi.weight.source?.tensor ?? qi.weight.name);
  }

  /** Source float rows [row, row + rowCount), columns [col, col + colCount), or null without a source. */
  async sourceRows(tensor: string, row: number, rowCount: number, col: number, colCount: number) {
    const { checkpoint } = await this.sourceCheckpoint();
    const t = checkpoint?.tensor(tensor);
    if (!checkpoint || !t) return null;
    const raw = await checkpoint.readRows(tensor, row, rowCount);
    const f = toF32(raw, t.dtype, tensor);
    const cols = f.length / Math.max(1, rowCount);
    const out = new Float64Array(rowCount * colCount);
    for (let r = 0; r < rowCount; r++) for (let c = 0; c < colCount; c++) out[r * colCount + c] = f[r * cols + col + c];
    return out;
  }

  /** Whether any member of the weight is deflated (then samples are read from the start). */
  deflated(name: string): boolean {
    const qi = this.info(name);
    if (!qi) return false;
    const parts = qi.kq ? kquantMembers(qi.weight) : [name, qi.weight.q_scales!, qi.weight.q_zero_point!];
    return parts.some((m) => this.reader.backing.info(m)?.compressed);
  }

  /**
   * Dequantized rows [row, row + rowCount), columns [col, col + colCount); with `codes`, the unpacked integer
   * codes instead (the engine's dequantization with scale 1 and zero point 0).
   */
  async rows(name: string, row: number, rowCount: number, col: number, colCount: number, codes = false) {
    const qi = this.info(name);
    if (!qi) throw new Error(`${name} is not a quantized weight of the manifest beside the archive`);
    const { weight, cols, bits, groupSize } = qi;
    const reader = this.reader;
    if (qi.kq) {
      // A kquant weight lives only in an archive, whose headers are numpy's.
      const src = {
        header: (m: string) => reader.header(m) as Promise<NpyHeader>,
        data: (m: string, o: number, n: number) => reader.data(m, o, n),
      };
      const deq = await kquantRows(src, weight, qi.kq, cols, row, rowCount);
      const out = new Float64Array(rowCount * colCount);
      for (let r = 0; r < rowCount; r++) out.set(deq.subarray(r * cols + col, r * cols + col + colCount), r * colCount);
      return out;
    }
    const rowBytes = packedRowBytes(cols, bits);
    const groups = groupsPerRow(cols, groupSize);
    const qh = await reader.header(name);
    if (qh.dtype !== 'uint8' || qh.fortranOrder || qh.dataBytes < qi.rows * rowBytes) {
      throw new Error(
        `${name}: expected ${qi.rows} rows of ${rowBytes} packed bytes (uint8), found ${qh.dtype} ${JSON.stringify(qh.shape)}`,
      );
    }
    // Scales and zero points as the engine takes them: raw little-endian float16 (what the converter writes), else
    // float32 (any other dtype is decoded and rounded to float32, the precision docs/FORMAT.md dequantizes in).
    const readGroups = async (member: string) => {
      const gh = await reader.header(member);
      if (gh.count < qi.rows * groups || gh.fortranOrder) {
        throw new Error(`${member}: expected ${qi.rows} × ${groups} values, found ${JSON.stringify(gh.shape)}`);
      }
      const buf = await reader.data(member, row * groups * gh.itemSize, rowCount * groups * gh.itemSize);
      return { dtype: gh.dtype, littleEndian: gh.littleEndian || gh.itemSize === 1, buf };
    };
    const asF32 = (g: Awaited<ReturnType<typeof readGroups>>): Uint8Array => {
      if (g.dtype === 'float32' && g.littleEndian) return g.buf;
      const v = new Float64Array(rowCount * groups);
      decodeInto(g.buf, g.dtype as ElementDType, g.littleEndian, v);
      return new Uint8Array(Float32Array.from(v).buffer);
    };
    const q = await reader.data(name, row * rowBytes, rowCount * rowBytes);
    if (codes) {
      const n = rowCount * groups;
      const deq = dequantize({
        q,
        scales: new Uint8Array(new Float32Array(n).fill(1).buffer),
        zeros: new Uint8Array(new Float32Array(n).buffer),
        rows: rowCount,
        cols,
        bits: bits as 1 | 2 | 4 | 8,
        groupSize,
        scaleDtype: 'f32',
        symmetric: false,
        mode: 'minmax',
      });
      return cutColumns(deq, rowCount, cols, col, colCount);
    }
    const s = await readGroups(weight.q_scales!);
    const z = await readGroups(weight.q_zero_point!);
    const f16 = s.dtype === 'float16' && z.dtype === 'float16' && s.littleEndian && z.littleEndian;
    const deq = dequantize({
      q,
      scales: f16 ? s.buf : asF32(s),
      zeros: f16 ? z.buf : asF32(z),
      rows: rowCount,
      cols,
      bits: bits as 1 | 2 | 4 | 8,
      groupSize,
      scaleDtype: f16 ? 'f16' : 'f32',
      // How the weight was quantized does not change how it dequantizes.
      symmetric: false,
      mode: 'minmax',
    });
    return cutColumns(deq, rowCount, cols, col, colCount);
  }

  /** Dequantized − source rows (the 'error' view's page). */
  async errorRows(name: string, row: number, rowCount: number, col: number, colCount: number) {
    const w = await this.sourceRows(this.sourceName(name)!, row, rowCount, col, colCount);
    if (!w)
      throw new Error(`${name}: the source weights are not available (${(await this.sourceCheckpoint()).detail})`);
    const values = await this.rows(name, row, rowCount, col, colCount);
    for (let i = 0; i < values.length; i++) values[i] -= w[i];
    return values;
  }

  /** Statistics, histogram and heat map of the dequantized weight (and of its error against the source). */
  async sample(name: string): Promise<InspectorTensor['dequant'] | undefined> {
    const qi = this.info(name);
    if (!qi) return undefined;
    const plan = samplePlan(qi.rows, qi.cols, MAX_SAMPLE_ELEMENTS, this.deflated(name) ? 1 : undefined);
    const values = new Float64Array(plan.rowsRead * plan.colsRead);
    let at = 0;
    for (const [start, count] of plan.ranges) {
      const part = await this.rows(name, start, count, 0, plan.colsRead);
      values.set(part, at);
      at += part.length;
    }
    const { stats, histogram } = computeStats(values, undefined, plan.sampled);
    const acc = qi.weight.accuracy;
    const srcName = this.sourceName(name)!;
    const { checkpoint, detail } = await this.sourceCheckpoint();
    let source: NonNullable<InspectorTensor['dequant']>['source'] = { available: false, detail };
    if (checkpoint && !checkpoint.tensor(srcName)) {
      source = { available: false, detail: `${srcName} is not in ${detail}` };
    } else if (checkpoint) {
      try {
        const w = new Float32Array(values.length);
        let at2 = 0;
        for (const [start, count] of plan.ranges) {
          const part = (await this.sourceRows(srcName, start, count, 0, plan.colsRead))!;
          w.set(part, at2);
          at2 += part.length;
        }
        // Both are float32 values (the source read as float32, the engine's float32 dequantization): exact here.
        const m = compareMetrics(w, Float32Array.from(values));
        // An all-zero source shows 0, as before, rather than an infinite relative error.
        const relError = Number.isFinite(m.relError) ? m.relError : 0;
        const err = new Float64Array(values.length);
        for (let i = 0; i < err.length; i++) err[i] = values[i] - w[i];
        const e = computeStats(err, undefined, plan.sampled);
        source = {
          available: true,
          detail,
          relError,
          maxAbsError: m.maxAbsError,
          error: { ...e, preview: downsample2d(err, plan.rowsRead, plan.colsRead) },
        };
      } catch (e) {
        source = { available: false, detail: errorMessage(e) };
      }
    }
    return {
      weight: qi.weight.name,
      bits: qi.bits,
      groupSize: qi.groupSize,
      rows: qi.rows,
      cols: qi.cols,
      stats,
      histogram,
      preview: downsample2d(values, plan.rowsRead, plan.colsRead),
      ...(acc && typeof acc === 'object' ? { accuracy: acc } : {}),
      source,
    };
  }
}
