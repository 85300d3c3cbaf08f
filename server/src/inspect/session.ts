// One open .npz or .npy file behind the inspector: the member table from the zip central directory (tensor
// data is read only when asked), statistics / histogram / heat-map preview of one tensor from a bounded sample,
// and pages of values (raw, or dequantized with the manifest beside the archive). No vscode import: the
// custom editor (client/src/webviews/inspectorEditor.ts) forwards webview messages to it.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { compareMetrics, decodeInto, dequantize, type ElementDType, elementSize } from '../../../native/index';
import type { Manifest } from '../formats/manifest';
import { groupsPerRow, packedRowBytes } from '../formats/manifest';
import { dtypeName, isNumericHeader, type NpyAnyHeader, type NpyHeader } from '../formats/npy';
import { type Checkpoint, toF32 } from '../formats/safetensors';
import type { InspectorMember, InspectorTensor, InspectorView } from '../protocol';
import { type Backing, clampPage, MAX_PAGE_ELEMENTS, openBacking } from './backing';

export { MAX_PAGE_ELEMENTS };

import { findManifestFor, memberRole, openSourceCheckpoint, quantizedWeight } from './dequant';
import { kquantMembers, kquantRows } from './dequant-kquant';
import { computeStats, DEFAULT_BINS, downsample2d, samplePlan } from './stats';
import { cutColumns, decodeText, elementIndex, gridShape, jsonValue } from './values';

/** At most this many values are read for a tensor's statistics, histogram and preview. */
export const MAX_SAMPLE_ELEMENTS = 1 << 20;
/** Element runs closer than this are read as one (reading a few KiB more beats another read). */
const COALESCE_BYTES = 4096;
/** Reads in flight at once for a page. */
const READ_CONCURRENCY = 16;

/** Why an object member is not shown: its data is a pickle, and unpickling runs code the file chooses. */
export const OBJECT_REFUSAL =
  'object array (pickled Python objects): not shown, since unpickling would run code from the file';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class InspectorSession {
  private readonly headers = new Map<string, NpyAnyHeader>();
  private source?: Promise<{ checkpoint: Checkpoint | null; detail: string }>;

  private constructor(
    readonly path: string,
    private readonly backing: Backing,
    readonly fileBytes: number,
    readonly manifest: { path: string; manifest: Manifest } | null,
  ) {}

  static async open(path: string): Promise<InspectorSession> {
    const backing = await openBacking(path);
    const size = (await stat(path)).size;
    const manifest = backing.kind === 'npz' ? await findManifestFor(path) : null;
    return new InspectorSession(path, backing, size, manifest);
  }

  get kind(): 'npz' | 'npy' {
    return this.backing.kind;
  }

  async close(): Promise<void> {
    const src = this.source ? await this.source : null;
    await src?.checkpoint?.close();
    await this.backing.close();
  }

  /** The source checkpoint the manifest names (dequant.ts openSourceCheckpoint), opened on first use. */
  private sourceCheckpoint(): Promise<{ checkpoint: Checkpoint | null; detail: string }> {
    this.source ??= openSourceCheckpoint(this.manifest);
    return this.source;
  }

  /** Source float rows [row, row + rowCount), columns [col, col + colCount), or null without a source. */
  private async sourceRows(tensor: string, row: number, rowCount: number, col: number, colCount: number) {
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

  private async anyHeader(name: string): Promise<NpyAnyHeader> {
    let h = this.headers.get(name);
    if (!h) {
      if (!this.backing.info(name)) throw new Error(`${basename(this.path)}: no member named ${name}`);
      h = await this.backing.header(name);
      this.headers.set(name, h);
    }
    return h;
  }

  /** The header of a member of numbers; a string, bytes or object member is refused by name. */
  private async header(name: string): Promise<NpyHeader> {
    const h = await this.anyHeader(name);
    if (!isNumericHeader(h))
      throw new Error(`${name}: ${h.descr} holds ${h.dtype === 'object' ? 'Python objects' : 'text'}, not numbers`);
    return h;
  }

  /** One row per member, in the archive's order; a member whose header is bad gets a row with `error`. */
  async members(): Promise<InspectorMember[]> {
    const row = async (name: string): Promise<InspectorMember> => {
      const info = this.backing.info(name)!;
      const role = this.manifest ? memberRole(this.manifest.manifest, name) : undefined;
      const base = { name, storedBytes: info.storedBytes, compressed: info.compressed, ...(role ? { role } : {}) };
      try {
        const h = await this.anyHeader(name);
        const row = { ...base, dtype: dtypeName(h), shape: h.shape, elements: h.count, bytes: h.dataBytes };
        return h.dtype === 'object' ? { ...row, error: OBJECT_REFUSAL } : row;
      } catch (e) {
        return { ...base, dtype: '?', shape: [], elements: 0, bytes: 0, error: errorMessage(e) };
      }
    };
    const names = this.backing.names;
    const rows: InspectorMember[] = [];
    for (let i = 0; i < names.length; i += READ_CONCURRENCY) {
      rows.push(...(await Promise.all(names.slice(i, i + READ_CONCURRENCY).map(row))));
    }
    return rows;
  }

  /**
   * Reads the elements at `indices`: ascending runs are coalesced into one read each (and runs separated by less
   * than COALESCE_BYTES into one), issued READ_CONCURRENCY at a time.
   */
  private async readElements(name: string, h: NpyHeader, indices: number[]): Promise<Float64Array> {
    const out = new Float64Array(indices.length);
    await this.readRuns(
      name,
      h,
      indices,
      (buf, first, count, put) => {
        const tmp = new Float64Array(count);
        decodeInto(buf, h.dtype as ElementDType, h.littleEndian, tmp);
        put((i) => tmp[i - first]);
      },
      out,
    );
    return out;
  }

  /** The strings at `indices` of a string or bytes member (trailing NULs dropped, as numpy shows them). */
  private async readTexts(name: string, h: NpyAnyHeader, indices: number[]): Promise<string[]> {
    const out = new Array<string>(indices.length);
    await this.readRuns(
      name,
      h,
      indices,
      (buf, first, _count, put) => {
        put((i) =>
          decodeText(
            buf.subarray((i - first) * h.itemSize, (i - first + 1) * h.itemSize),
            h.dtype === 'unicode',
            h.littleEndian,
          ),
        );
      },
      out,
    );
    return out;
  }

  private async readRuns<T>(
    name: string,
    h: NpyAnyHeader,
    indices: number[],
    decode: (buf: Buffer, first: number, count: number, put: (at: (index: number) => T) => void) => void,
    out: { [k: number]: T },
  ): Promise<void> {
    const size = Math.max(1, h.itemSize);
    const order = indices.map((_, i) => i).sort((a, b) => indices[a] - indices[b]);
    const runs: [from: number, to: number][] = []; // [i, j) positions in `order`
    const gap = Math.max(1, Math.floor(COALESCE_BYTES / size));
    let i = 0;
    while (i < order.length) {
      let j = i + 1;
      while (j < order.length && indices[order[j]] - indices[order[j - 1]] <= gap) j++;
      runs.push([i, j]);
      i = j;
    }
    for (let r = 0; r < runs.length; r += READ_CONCURRENCY) {
      await Promise.all(
        runs.slice(r, r + READ_CONCURRENCY).map(async ([from, to]) => {
          const first = indices[order[from]];
          const last = indices[order[to - 1]];
          const buf = await this.backing.data(name, first * size, (last - first + 1) * size);
          decode(buf, first, last - first + 1, (at) => {
            for (let k = from; k < to; k++) out[order[k]] = at(indices[order[k]]);
          });
        }),
      );
    }
  }

  /** Statistics, histogram and preview of a member (and of its dequantized weight when the manifest says). */
  async tensor(name: string): Promise<InspectorTensor> {
    const ah = await this.anyHeader(name);
    if (ah.dtype === 'object') throw new Error(`${name}: ${OBJECT_REFUSAL}`);
    if (!isNumericHeader(ah)) {
      // Text: no statistics, the grid shows the strings.
      const { rows, cols } = gridShape(ah.shape);
      const stats = { count: ah.count, min: 0, max: 0, mean: 0, std: 0, nan: 0, inf: 0, sampled: false };
      return {
        name,
        dtype: ah.descr,
        shape: ah.shape,
        rows,
        cols,
        text: true,
        stats,
        histogram: { min: 0, max: 0, counts: [] },
        preview: null,
      };
    }
    const h = ah;
    if (elementSize(h.dtype) === undefined) throw new Error(`${name}: cannot show values of dtype ${h.dtype}`);
    const { rows, cols } = gridShape(h.shape);
    // A deflated member can only be read from its start: sample its first rows rather than inflating it over and
    // over to reach evenly spaced ones.
    const plan = samplePlan(rows, cols, MAX_SAMPLE_ELEMENTS, this.backing.info(name)!.compressed ? 1 : undefined);
    let values: Float64Array;
    let previewOk = true;
    if (!h.fortranOrder || !plan.sampled) {
      values = new Float64Array(plan.rowsRead * plan.colsRead);
      let at = 0;
      if (h.fortranOrder) {
        const idx: number[] = [];
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) idx.push(elementIndex(h, rows, cols, r, c));
        values = await this.readElements(name, h, idx);
      } else {
        // One read per row range (or per row when rows are cut), READ_CONCURRENCY in flight.
        const reads: [row: number, rowCount: number, at: number][] = [];
        for (const [start, count] of plan.ranges) {
          if (plan.colsRead === cols) {
            reads.push([start, count, at]);
            at += count * cols;
          } else {
            for (let r = start; r < start + count; r++, at += plan.colsRead) reads.push([r, 1, at]);
          }
        }
        for (let k = 0; k < reads.length; k += READ_CONCURRENCY) {
          await Promise.all(
            reads.slice(k, k + READ_CONCURRENCY).map(async ([row, count, dst]) => {
              const n = count === 1 ? plan.colsRead : count * cols;
              const buf = await this.backing.data(name, row * cols * h.itemSize, n * h.itemSize);
              decodeInto(buf, h.dtype as ElementDType, h.littleEndian, values, dst);
            }),
          );
        }
      }
    } else {
      // A Fortran-order tensor too large to read whole: statistics from flat chunks, no preview.
      const flat = samplePlan(1, h.count, MAX_SAMPLE_ELEMENTS);
      values = new Float64Array(flat.colsRead);
      decodeInto(
        await this.backing.data(name, 0, flat.colsRead * h.itemSize),
        h.dtype as ElementDType,
        h.littleEndian,
        values,
      );
      previewOk = false;
    }
    const { stats, histogram } = computeStats(values, undefined, plan.sampled);
    const result: InspectorTensor = {
      name,
      dtype: h.dtype,
      shape: h.shape,
      rows,
      cols,
      stats,
      histogram,
      preview: previewOk && h.shape.length >= 2 ? downsample2d(values, plan.rowsRead, plan.colsRead) : null,
    };
    const dq = await this.dequantSample(name);
    if (dq) {
      result.dequant = dq;
      // The packed bytes mean nothing as numbers: statistics, histogram and heat map of the unpacked codes.
      const plan = samplePlan(
        dq.rows,
        dq.cols,
        MAX_SAMPLE_ELEMENTS,
        this.backing.info(name)!.compressed ? 1 : undefined,
      );
      const codes = new Float64Array(plan.rowsRead * plan.colsRead);
      let at = 0;
      for (const [start, count] of plan.ranges) {
        const part = await this.dequantRowsOf(name, start, count, 0, plan.colsRead, true);
        codes.set(part, at);
        at += part.length;
      }
      const c = computeStats(codes, Math.min(DEFAULT_BINS, 2 ** dq.bits), plan.sampled);
      result.codes = {
        bits: dq.bits,
        rows: dq.rows,
        cols: dq.cols,
        ...c,
        preview: downsample2d(codes, plan.rowsRead, plan.colsRead),
      };
    }
    return result;
  }

  private quantInfo(name: string) {
    return this.manifest ? quantizedWeight(this.manifest.manifest, name) : undefined;
  }

  /**
   * Dequantized rows [row, row + rowCount), columns [col, col + colCount); with `codes`, the unpacked integer
   * codes instead (the engine's dequantization with scale 1 and zero point 0).
   */
  private async dequantRowsOf(
    name: string,
    row: number,
    rowCount: number,
    col: number,
    colCount: number,
    codes = false,
  ) {
    const qi = this.quantInfo(name);
    if (!qi) throw new Error(`${name} is not a quantized weight of the manifest beside the archive`);
    const { weight, cols, bits, groupSize } = qi;
    if (qi.kq) {
      const src = {
        header: (m: string) => this.header(m),
        data: (m: string, o: number, n: number) => this.backing.data(m, o, n),
      };
      const deq = await kquantRows(src, weight, qi.kq, cols, row, rowCount);
      const out = new Float64Array(rowCount * colCount);
      for (let r = 0; r < rowCount; r++) out.set(deq.subarray(r * cols + col, r * cols + col + colCount), r * colCount);
      return out;
    }
    const rowBytes = packedRowBytes(cols, bits);
    const groups = groupsPerRow(cols, groupSize);
    const qh = await this.header(name);
    if (qh.dtype !== 'uint8' || qh.fortranOrder || qh.dataBytes < qi.rows * rowBytes) {
      throw new Error(
        `${name}: expected ${qi.rows} rows of ${rowBytes} packed bytes (uint8), found ${qh.dtype} ${JSON.stringify(qh.shape)}`,
      );
    }
    // Scales and zero points as the engine takes them: raw little-endian float16 (what the converter writes), else
    // float32 (any other dtype is decoded and rounded to float32, the precision docs/FORMAT.md dequantizes in).
    const readGroups = async (member: string) => {
      const gh = await this.header(member);
      if (gh.count < qi.rows * groups || gh.fortranOrder) {
        throw new Error(`${member}: expected ${qi.rows} × ${groups} values, found ${JSON.stringify(gh.shape)}`);
      }
      const buf = await this.backing.data(member, row * groups * gh.itemSize, rowCount * groups * gh.itemSize);
      return { dtype: gh.dtype, littleEndian: gh.littleEndian || gh.itemSize === 1, buf };
    };
    const asF32 = (g: Awaited<ReturnType<typeof readGroups>>): Uint8Array => {
      if (g.dtype === 'float32' && g.littleEndian) return g.buf;
      const v = new Float64Array(rowCount * groups);
      decodeInto(g.buf, g.dtype as ElementDType, g.littleEndian, v);
      return new Uint8Array(Float32Array.from(v).buffer);
    };
    const q = await this.backing.data(name, row * rowBytes, rowCount * rowBytes);
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

  private async dequantSample(name: string): Promise<InspectorTensor['dequant'] | undefined> {
    const qi = this.quantInfo(name);
    if (!qi) return undefined;
    const parts = qi.kq ? kquantMembers(qi.weight) : [name, qi.weight.q_scales!, qi.weight.q_zero_point!];
    const deflated = parts.some((m) => this.backing.info(m)?.compressed);
    const plan = samplePlan(qi.rows, qi.cols, MAX_SAMPLE_ELEMENTS, deflated ? 1 : undefined);
    const values = new Float64Array(plan.rowsRead * plan.colsRead);
    let at = 0;
    for (const [start, count] of plan.ranges) {
      const part = await this.dequantRowsOf(name, start, count, 0, plan.colsRead);
      values.set(part, at);
      at += part.length;
    }
    const { stats, histogram } = computeStats(values, undefined, plan.sampled);
    const acc = qi.weight.accuracy;
    const srcName = qi.weight.source?.tensor ?? qi.weight.name;
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
        source = { available: true, detail, relError, maxAbsError: m.maxAbsError };
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

  /** A rowCount × colCount page of values (clamped to the grid); never more than MAX_PAGE_ELEMENTS. */
  async page(
    name: string,
    view: InspectorView,
    row: number,
    rowCount: number,
    col: number,
    colCount: number,
  ): Promise<{ row: number; col: number; rowCount: number; colCount: number; values: (number | string)[] }> {
    let rows: number;
    let cols: number;
    const ah = await this.anyHeader(name);
    if (!isNumericHeader(ah) && view === 'raw') {
      if (ah.dtype === 'object') throw new Error(`${name}: ${OBJECT_REFUSAL}`);
      const g = gridShape(ah.shape);
      const p = clampPage(g.rows, g.cols, row, rowCount, col, colCount);
      const idx: number[] = [];
      for (let r = p.row; r < p.row + p.rowCount; r++) {
        for (let c = p.col; c < p.col + p.colCount; c++) idx.push(elementIndex(ah, g.rows, g.cols, r, c));
      }
      return { ...p, values: idx.length ? await this.readTexts(name, ah, idx) : [] };
    }
    const h = await this.header(name);
    if (view === 'dequant' || view === 'error' || view === 'codes') {
      const qi = this.quantInfo(name);
      if (!qi) throw new Error(`${name} is not a quantized weight of the manifest beside the archive`);
      rows = qi.rows;
      cols = qi.cols;
    } else {
      if (elementSize(h.dtype) === undefined) throw new Error(`${name}: cannot show values of dtype ${h.dtype}`);
      ({ rows, cols } = gridShape(h.shape));
    }
    ({ row, col, rowCount, colCount } = clampPage(rows, cols, row, rowCount, col, colCount));
    let values: Float64Array;
    if (rowCount === 0 || colCount === 0) values = new Float64Array(0);
    else if (view === 'dequant') values = await this.dequantRowsOf(name, row, rowCount, col, colCount);
    else if (view === 'codes') values = await this.dequantRowsOf(name, row, rowCount, col, colCount, true);
    else if (view === 'error') {
      const qi = this.quantInfo(name)!;
      const w = await this.sourceRows(qi.weight.source?.tensor ?? qi.weight.name, row, rowCount, col, colCount);
      if (!w)
        throw new Error(`${name}: the source weights are not available (${(await this.sourceCheckpoint()).detail})`);
      values = await this.dequantRowsOf(name, row, rowCount, col, colCount);
      for (let i = 0; i < values.length; i++) values[i] -= w[i];
    } else {
      const idx: number[] = [];
      for (let r = row; r < row + rowCount; r++) {
        for (let c = col; c < col + colCount; c++) idx.push(elementIndex(h, rows, cols, r, c));
      }
      values = await this.readElements(name, h, idx);
    }
    return { row, col, rowCount, colCount, values: Array.from(values, jsonValue) };
  }
}
