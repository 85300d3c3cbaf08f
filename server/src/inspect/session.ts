// One open tensor file behind the inspector (.npz, .npy, .safetensors or a sharded checkpoint's index): the member
// table from the zip central directory or the safetensors headers (tensor data is read only when asked),
// statistics / histogram / heat-map preview of one tensor from a bounded sample, 2-D slices of N-d tensors, and
// pages of values (raw, a slice, or dequantized with the manifest beside the archive: quantized.ts). No vscode
// import: the custom editor (client/src/webviews/inspectorEditor.ts) forwards webview messages to it.
import { stat } from 'node:fs/promises';
import { decodeInto, type ElementDType, elementSize } from '../../../native/index';
import type { InspectorMember, InspectorSlice, InspectorTensor, InspectorView } from '../protocol';
import { clampPage, isOther, MAX_PAGE_ELEMENTS, openBacking } from './backing';
import { findManifestFor, memberRole } from './dequant';
import { MAX_SAMPLE_ELEMENTS, QuantizedMembers } from './quantized';
import { MemberReader, READ_CONCURRENCY } from './reader';
import { sliceGrid, sliceIndices } from './slice';
import { computeStats, DEFAULT_BINS, downsample2d, samplePlan } from './stats';
import { elementIndex, gridShape, jsonValue } from './values';

export { MAX_PAGE_ELEMENTS, MAX_SAMPLE_ELEMENTS };

/** Why an object member is not shown: its data is a pickle, and unpickling runs code the file chooses. */
export const OBJECT_REFUSAL =
  'object array (pickled Python objects): not shown, since unpickling would run code from the file';

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class InspectorSession {
  readonly reader: MemberReader;
  readonly quantized: QuantizedMembers;

  private constructor(
    readonly path: string,
    reader: MemberReader,
    readonly fileBytes: number,
    readonly manifest: QuantizedMembers['manifest'],
  ) {
    this.reader = reader;
    this.quantized = new QuantizedMembers(reader, manifest);
  }

  static async open(path: string): Promise<InspectorSession> {
    const backing = await openBacking(path);
    const size = backing.diskBytes ?? (await stat(path)).size;
    const manifest = backing.kind === 'npz' ? await findManifestFor(path) : null;
    return new InspectorSession(path, new MemberReader(path, backing), size, manifest);
  }

  get kind() {
    return this.reader.backing.kind;
  }

  /** Member names, in the file's order. */
  get names(): string[] {
    return this.reader.backing.names;
  }

  async close(): Promise<void> {
    await this.quantized.close();
    await this.reader.backing.close();
  }

  /** One row per member, in the file's order; a member whose header is bad gets a row with `error`. */
  async members(): Promise<InspectorMember[]> {
    const row = async (name: string): Promise<InspectorMember> => {
      const info = this.reader.backing.info(name)!;
      const role = this.manifest ? memberRole(this.manifest.manifest, name) : undefined;
      const base = {
        name,
        storedBytes: info.storedBytes,
        compressed: info.compressed,
        ...(role ? { role } : {}),
        ...(info.shard ? { shard: info.shard } : {}),
      };
      try {
        const h = await this.reader.anyHeader(name);
        const dtype = isOther(h) ? h.descr : h.dtype;
        const row = { ...base, dtype, shape: h.shape, elements: h.count, bytes: h.dataBytes };
        return h.dtype === 'object' ? { ...row, error: OBJECT_REFUSAL } : row;
      } catch (e) {
        return { ...base, dtype: '?', shape: [], elements: 0, bytes: 0, error: errorMessage(e) };
      }
    };
    const names = this.names;
    const rows: InspectorMember[] = [];
    for (let i = 0; i < names.length; i += READ_CONCURRENCY) {
      rows.push(...(await Promise.all(names.slice(i, i + READ_CONCURRENCY).map(row))));
    }
    return rows;
  }

  private compressed(name: string): boolean {
    return !!this.reader.backing.info(name)?.compressed;
  }

  /** Statistics, histogram and preview of a member (and of its dequantized weight when the manifest says). */
  async tensor(name: string): Promise<InspectorTensor> {
    const ah = await this.reader.anyHeader(name);
    if (ah.dtype === 'object') throw new Error(`${name}: ${OBJECT_REFUSAL}`);
    if (isOther(ah)) {
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
    const plan = samplePlan(rows, cols, MAX_SAMPLE_ELEMENTS, this.compressed(name) ? 1 : undefined);
    let values: Float64Array;
    let previewOk = true;
    if (!h.fortranOrder || !plan.sampled) {
      values = new Float64Array(plan.rowsRead * plan.colsRead);
      let at = 0;
      if (h.fortranOrder) {
        const idx: number[] = [];
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) idx.push(elementIndex(h, rows, cols, r, c));
        values = await this.reader.readElements(name, h, idx);
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
              const buf = await this.reader.data(name, row * cols * h.itemSize, n * h.itemSize);
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
        await this.reader.data(name, 0, flat.colsRead * h.itemSize),
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
    const dq = await this.quantized.sample(name);
    if (dq) {
      result.dequant = dq;
      // The packed bytes mean nothing as numbers: statistics, histogram and heat map of the unpacked codes.
      const plan = samplePlan(dq.rows, dq.cols, MAX_SAMPLE_ELEMENTS, this.compressed(name) ? 1 : undefined);
      const codes = new Float64Array(plan.rowsRead * plan.colsRead);
      let at = 0;
      for (const [start, count] of plan.ranges) {
        const part = await this.quantized.rows(name, start, count, 0, plan.colsRead, true);
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

  /**
   * Statistics, histogram and heat map of one 2-D slice of an N-d member: the whole slice when it holds at most
   * MAX_SAMPLE_ELEMENTS values, else evenly spaced runs of its rows. Reads only elements of the slice.
   */
  async slice(name: string, s: InspectorSlice) {
    const h = await this.reader.header(name);
    if (elementSize(h.dtype) === undefined) throw new Error(`${name}: cannot show values of dtype ${h.dtype}`);
    const { rows, cols } = sliceGrid(name, h.shape, s);
    const plan = samplePlan(rows, cols, MAX_SAMPLE_ELEMENTS);
    const idx: number[] = [];
    for (const [start, count] of plan.ranges) {
      for (const i of sliceIndices(h, s, start, count, 0, plan.colsRead)) idx.push(i);
    }
    const values = await this.reader.readElements(name, h, idx);
    const { stats, histogram } = computeStats(values, undefined, plan.sampled);
    return { rows, cols, stats, histogram, preview: downsample2d(values, plan.rowsRead, plan.colsRead) };
  }

  /**
   * The matrix a member stands for in comparisons: a quantized member's dequantized weight, else its values as the
   * rows × cols grid; with its dtype and shape as shown.
   */
  async matrix(
    name: string,
  ): Promise<{ rows: number; cols: number; dtype: string; shape: number[]; deflated: boolean }> {
    const qi = this.quantized.info(name);
    if (qi)
      return {
        rows: qi.rows,
        cols: qi.cols,
        dtype: 'float32',
        shape: [...qi.weight.shape],
        deflated: this.quantized.deflated(name),
      };
    const h = await this.reader.header(name);
    if (elementSize(h.dtype) === undefined) throw new Error(`${name}: cannot show values of dtype ${h.dtype}`);
    return { ...gridShape(h.shape), dtype: h.dtype, shape: h.shape, deflated: this.compressed(name) };
  }

  /** Rows [row, row + rowCount), columns [col, col + colCount) of matrix(name) (not clamped: the caller checks). */
  async matrixRows(name: string, row: number, rowCount: number, col: number, colCount: number): Promise<Float64Array> {
    if (this.quantized.info(name)) return this.quantized.rows(name, row, rowCount, col, colCount);
    return this.rawRows(name, row, rowCount, col, colCount);
  }

  /** Stored values of grid rows [row, row + rowCount), columns [col, col + colCount). */
  private async rawRows(name: string, row: number, rowCount: number, col: number, colCount: number) {
    const h = await this.reader.header(name);
    const { rows, cols } = gridShape(h.shape);
    const idx: number[] = [];
    for (let r = row; r < row + rowCount; r++) {
      for (let c = col; c < col + colCount; c++) idx.push(elementIndex(h, rows, cols, r, c));
    }
    return this.reader.readElements(name, h, idx);
  }

  /** A rowCount × colCount page of values (clamped to the grid); never more than MAX_PAGE_ELEMENTS. */
  async page(
    name: string,
    view: Exclude<InspectorView, 'diff'>,
    row: number,
    rowCount: number,
    col: number,
    colCount: number,
    slice?: InspectorSlice,
  ): Promise<{ row: number; col: number; rowCount: number; colCount: number; values: (number | string)[] }> {
    let rows: number;
    let cols: number;
    const ah = await this.reader.anyHeader(name);
    if (isOther(ah) && view === 'raw') {
      if (ah.dtype === 'object') throw new Error(`${name}: ${OBJECT_REFUSAL}`);
      const g = gridShape(ah.shape);
      const p = clampPage(g.rows, g.cols, row, rowCount, col, colCount);
      const idx: number[] = [];
      for (let r = p.row; r < p.row + p.rowCount; r++) {
        for (let c = p.col; c < p.col + p.colCount; c++) idx.push(elementIndex(ah, g.rows, g.cols, r, c));
      }
      return { ...p, values: idx.length ? await this.reader.readTexts(name, ah, idx) : [] };
    }
    const h = await this.reader.header(name);
    if (view === 'dequant' || view === 'error' || view === 'codes') {
      const qi = this.quantized.info(name);
      if (!qi) throw new Error(`${name} is not a quantized weight of the manifest beside the archive`);
      rows = qi.rows;
      cols = qi.cols;
    } else {
      if (elementSize(h.dtype) === undefined) throw new Error(`${name}: cannot show values of dtype ${h.dtype}`);
      ({ rows, cols } = slice ? sliceGrid(name, h.shape, slice) : gridShape(h.shape));
    }
    ({ row, col, rowCount, colCount } = clampPage(rows, cols, row, rowCount, col, colCount));
    let values: Float64Array;
    if (rowCount === 0 || colCount === 0) values = new Float64Array(0);
    else if (view === 'dequant') values = await this.quantized.rows(name, row, rowCount, col, colCount);
    else if (view === 'codes') values = await this.quantized.rows(name, row, rowCount, col, colCount, true);
    else if (view === 'error') values = await this.quantized.errorRows(name, row, rowCount, col, colCount);
    else if (slice)
      values = await this.reader.readElements(name, h, sliceIndices(h, slice, row, rowCount, col, colCount));
    else values = await this.rawRows(name, row, rowCount, col, colCount);
    return { row, col, rowCount, colCount, values: Array.from(values, jsonValue) };
  }
}
