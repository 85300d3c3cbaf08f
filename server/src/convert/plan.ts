// Which tensors get which treatment: 2-D (and higher) float weights are quantized; 1-D tensors (norms, biases) and
// non-float tensors are kept as float (or their integer type) with quantization type `none`. Token embeddings and
// the output head are the most sensitive and default to 8 bits (`--embeddings-bits`).
import { KQ_PRESETS, type KqFormat } from '../../../native/kquant';
import {
  type BitWidth,
  matrixView,
  type QuantFormat,
  type QuantizationMethod,
  type QuantizationType,
  type RoundingMode,
} from '../formats/manifest';
import { ConvertError } from './errors';

export interface PlanOptions {
  bits: BitWidth;
  /** Elements per group along the last axis, or 'row' for one group per row. */
  groupSize: number | 'row';
  symmetric: boolean;
  mode: RoundingMode;
  /** Bits for embed_tokens and lm_head (default 8). */
  embeddingsBits?: BitWidth;
  /** 'kquant': 2- and 4-bit weights get the two-level-scale type (KQ_PRESETS); other widths stay groupwise. */
  format?: QuantFormat;
}

export interface TensorInfoLike {
  name: string;
  dtype: string;
  shape: number[];
  /** The safetensors file that holds it, where known (named in errors). */
  file?: string;
}

export type NumpyKeepDtype =
  | 'float16'
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool';

export type TensorPlan =
  | {
      kind: 'quantize';
      name: string;
      dtype: 'F32' | 'F16' | 'BF16';
      shape: number[];
      rows: number;
      cols: number;
      bits: BitWidth;
      groupSize: number;
      type: QuantizationType;
      method: QuantizationMethod;
      symmetric: boolean;
      mode: RoundingMode;
      /** Type kquant: its format (group, super-block, code widths). */
      kq?: KqFormat;
    }
  | {
      kind: 'keep';
      name: string;
      dtype: string;
      shape: number[];
      /** numpy dtype of the stored array. BF16 is widened to float32 (lossless; numpy has no bfloat16). */
      storeDtype: NumpyKeepDtype;
      bits: 16 | 32;
    };

export type QuantPlan = Extract<TensorPlan, { kind: 'quantize' }>;
export type KeepPlan = Extract<TensorPlan, { kind: 'keep' }>;

const FLOAT = new Set(['F32', 'F16', 'BF16']);
const KEEP: Record<string, NumpyKeepDtype> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'float32',
  I8: 'int8',
  U8: 'uint8',
  I16: 'int16',
  U16: 'uint16',
  I32: 'int32',
  U32: 'uint32',
  I64: 'int64',
  U64: 'uint64',
  BOOL: 'bool',
};

/** embed_tokens (input embeddings) and lm_head (output head). */
export function isEmbeddingOrHead(name: string): boolean {
  return /(^|\.)(embed_tokens|lm_head|wte|embed_in|embed_out)(\.|$)/.test(name);
}

export function planTensor(t: TensorInfoLike, o: PlanOptions): TensorPlan {
  const { rows, cols } = matrixView(t.shape);
  if (t.shape.length >= 2 && FLOAT.has(t.dtype) && rows > 0 && cols > 0) {
    const bits = isEmbeddingOrHead(t.name) ? (o.embeddingsBits ?? 8) : o.bits;
    const groupSize = o.groupSize === 'row' ? cols : Math.min(o.groupSize, cols);
    const base = {
      kind: 'quantize',
      name: t.name,
      dtype: t.dtype as 'F32' | 'F16' | 'BF16',
      shape: t.shape,
      rows,
      cols,
      bits,
    } as const;
    if (o.format === 'kquant' && (bits === 2 || bits === 4)) {
      const kq = KQ_PRESETS[bits];
      return {
        ...base,
        groupSize: kq.group,
        type: 'kquant',
        method: 'asymmetric',
        symmetric: false,
        mode: o.mode,
        kq,
      };
    }
    return {
      ...base,
      groupSize,
      type: groupSize >= cols ? 'perrow_int' : 'groupwise_int',
      method: bits === 1 ? 'sign' : o.symmetric ? 'symmetric' : 'asymmetric',
      symmetric: o.symmetric,
      mode: o.mode,
    };
  }
  const storeDtype = KEEP[t.dtype];
  if (!storeDtype) {
    throw new ConvertError(
      'unsupported',
      `${t.file ? `${t.file}: ` : ''}tensor ${t.name}: dtype ${t.dtype} is not supported (weights are read as F32, F16 ` +
        'or BF16, other tensors kept as F64, integers or BOOL; a pre-quantized or FP8 checkpoint needs its float original)',
    );
  }
  const bits = storeDtype === 'float16' || storeDtype.endsWith('16') ? 16 : 32;
  return { kind: 'keep', name: t.name, dtype: t.dtype, shape: t.shape, storeDtype, bits };
}

export function planModel(tensors: readonly TensorInfoLike[], o: PlanOptions): TensorPlan[] {
  return tensors.map((t) => planTensor(t, o));
}
