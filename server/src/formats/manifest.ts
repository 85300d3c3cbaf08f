// The manifest (format_version "2"): the JSON contract that describes a quantized NPZ. See docs/FORMAT.md and
// schemas/manifest.schema.json. Plain types only; no I/O here.
//
// Dequantization, for every weight whose quantization.type is not "none":
//   w[r, c] ≈ (q[r, c] − zero_point[r, g]) · scale[r, g],   g = floor(c / group_size)
// where q is unpacked from `q` (uint8, 8/bits values per byte, first value in the lowest bits, each row padded
// to whole bytes), and `q_scales` / `q_zero_point` are float16 (or float32) arrays of shape [rows, groups].
// A tensor of more than two dimensions is quantized as rows = prod(shape[:-1]), cols = shape[-1].
// Type `kquant` (two-level scales, docs/FORMAT.md) has no q_scales / q_zero_point (null) but q_codes, q_d, q_dmin.

export const MANIFEST_FORMAT_VERSION = '2';

/** Bit widths the engine produces. */
export type BitWidth = 1 | 2 | 4 | 8;
export const BIT_WIDTHS: readonly BitWidth[] = [1, 2, 4, 8];
export function isBitWidth(n: unknown): n is BitWidth {
  return (BIT_WIDTHS as readonly unknown[]).includes(n);
}
/** "1, 2, 4 or 8", for messages. */
export const BIT_WIDTHS_TEXT = `${BIT_WIDTHS.slice(0, -1).join(', ')} or ${BIT_WIDTHS[BIT_WIDTHS.length - 1]}`;

/** `perrow_int`: one group per row (the guide's layout); `groupwise_int`: groups of `group_size`; `none`: float. */
/** `kquant`: groups whose scale and min are small integer codes under a float16 pair per super-block. */
export type QuantizationType = 'perrow_int' | 'groupwise_int' | 'kquant' | 'none';
/** The layouts `--format` chooses between: `groupwise` (groupwise_int / perrow_int) or `kquant`. */
export type QuantFormat = 'groupwise' | 'kquant';
export const QUANT_FORMATS: readonly QuantFormat[] = ['groupwise', 'kquant'];
/** `sign` is the 1-bit scheme (q − 0.5)·scale; `symmetric` has zero_point 2^(bits−1); `asymmetric` a free one. */
export type QuantizationMethod = 'symmetric' | 'asymmetric' | 'sign' | 'none';
/** `minmax`: plain min/max rounding; `optimized`: the error-minimising search (clipping / zero-point refinement). */
export type RoundingMode = 'minmax' | 'optimized';

export interface Quantization {
  type: QuantizationType;
  bits: BitWidth | 16 | 32;
  method: QuantizationMethod;
  /** Elements per group along the last axis; equals the row length for perrow_int. Absent for type none. */
  group_size?: number;
  /** dtype of q_scales and q_zero_point as numpy spells it. */
  scale_dtype?: 'float16' | 'float32';
  rounding?: RoundingMode;
  /** kquant: elements per super-block (a multiple of group_size). */
  super_size?: number;
  /** kquant: bits of each group's scale code and min code. */
  scale_bits?: number;
  min_bits?: number;
}

export interface WeightSource {
  /** The tensor's name in the checkpoint. */
  tensor: string;
  /** The safetensors dtype in the checkpoint: F32, F16, BF16, ... */
  dtype: string;
  /** The safetensors file that held it. */
  file?: string;
}

export interface WeightAccuracy {
  rel_error: number;
  snr_db: number;
  cosine: number;
  max_abs_error: number;
  output_rel_error?: number;
  pass: boolean;
}

export interface WeightEntry {
  /** The weight's name; the converter uses the checkpoint's tensor name. */
  name: string;
  /** The tensor's logical shape, as in the checkpoint. */
  shape: number[];
  bit_width: BitWidth | 16 | 32;
  /** NPZ member holding the packed values (uint8), or the float array when quantization.type is none. */
  q: string;
  /** NPZ member of the scales, [rows, groups]; null for type none. */
  q_scales: string | null;
  /** NPZ member of the zero points, [rows, groups]; null for type none. */
  q_zero_point: string | null;
  /** kquant only: per group the scale code then the min code, uint8 [rows, ceil(groups·(scale_bits+min_bits)/8)]. */
  q_codes?: string;
  /** kquant only: float16 [rows, supers], the super-scale of the scale codes. */
  q_d?: string;
  /** kquant only: float16 [rows, supers], the super-scale of the min codes. */
  q_dmin?: string;
  quantization: Quantization;
  source: WeightSource;
  /** Transformer layer index, when the tensor belongs to one. */
  layer?: number;
  /** CRC-32 (8 lowercase hex digits) of each member's whole .npy file, as stored in the zip directory. */
  checksums?: {
    q: string;
    q_scales?: string;
    q_zero_point?: string;
    q_codes?: string;
    q_d?: string;
    q_dmin?: string;
  };
  accuracy?: WeightAccuracy;
}

export interface ModelInfo {
  name: string;
  family: string;
  /** HF architecture class, e.g. LlamaForCausalLM. */
  architecture?: string;
  /** Where it came from: a Hub repo id or a local folder. */
  source?: string;
  revision?: string;
  context_length?: number;
  hidden_dim?: number;
  intermediate_size?: number;
  num_layers?: number;
  num_heads?: number;
  num_kv_heads?: number;
  vocab_size?: number;
  tie_word_embeddings?: boolean;
  // What the forward pass needs beyond the shape (written by convert from config.json; see docs/FORMAT.md).
  /** Width of one attention head (config head_dim, else hidden_dim / num_heads). */
  head_dim?: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  /** config.json's rope_scaling as is, e.g. {"type": "linear", "factor": 2}. */
  rope_scaling?: Record<string, unknown>;
  /** Attend only to the last sliding_window positions (Mistral v0.1); null when the config disables it. */
  sliding_window?: number | null;
  /** The MLP activation as config.json names it (silu, gelu_pytorch_tanh, …). */
  hidden_act?: string;
  bos_token_id?: number;
  eos_token_id?: number | number[];
}

export interface ManifestMetadata {
  /** NPZ file name, relative to the manifest's folder. */
  npz: string;
  created_by: string;
  created_at?: string;
  /** Accuracy report file name, relative to the manifest's folder. */
  accuracy_report?: string;
  default_bits?: BitWidth;
  default_group_size?: number | 'row';
  embeddings_bits?: BitWidth;
  total_params?: number;
  source_bytes?: number;
  output_bytes?: number;
  bits_per_weight?: number;
  backend?: string;
  /** Side files convert keeps beside the manifest (names relative to its folder), when the checkpoint had them. */
  tokenizer?: string;
  tokenizer_config?: string;
  generation_config?: string;
  [key: string]: unknown;
}

export interface Manifest {
  format_version: typeof MANIFEST_FORMAT_VERSION;
  model: ModelInfo;
  weights: WeightEntry[];
  metadata: ManifestMetadata;
}

/** `model.layers.0.self_attn.q_proj.weight` → `model_layers_0_self_attn_q_proj_weight`: safe NPZ member stems. */
export function memberStem(tensorName: string): string {
  return tensorName.replace(/[^A-Za-z0-9_-]+/g, '_');
}

/** The NPZ member names the converter writes for a tensor (file names, with `.npy`: numpy's NpzFile takes both). */
export function memberNames(tensorName: string, bits: number | null) {
  const stem = memberStem(tensorName);
  if (bits === null) return { q: `${stem}.npy`, q_scales: null, q_zero_point: null };
  return {
    q: `${stem}_q${bits}.npy`,
    q_scales: `${stem}_q${bits}_scales.npy`,
    q_zero_point: `${stem}_q${bits}_zero_point.npy`,
  };
}

/** The NPZ member names of a kquant tensor: q as for the other type, then its codes and super-scales. */
export function kquantMemberNames(tensorName: string, bits: number) {
  const base = `${memberStem(tensorName)}_q${bits}`;
  return { q: `${base}.npy`, q_codes: `${base}_codes.npy`, q_d: `${base}_d.npy`, q_dmin: `${base}_dmin.npy` };
}

/** Packed bytes per row for `cols` values of `bits` bits. */
export function packedRowBytes(cols: number, bits: number): number {
  return Math.ceil((cols * bits) / 8);
}

/** Groups per row. */
export function groupsPerRow(cols: number, groupSize: number): number {
  return Math.ceil(cols / groupSize);
}

/** rows × cols view of a logical shape (rows = product of all but the last axis). */
export function matrixView(shape: readonly number[]): { rows: number; cols: number } {
  if (shape.length === 0) return { rows: 1, cols: 1 };
  const cols = shape[shape.length - 1];
  let rows = 1;
  for (let i = 0; i < shape.length - 1; i++) rows *= shape[i];
  return { rows, cols };
}
