// The manifest a conversion writes: one entry per tensor (kept as float, or quantized with its members, checksums
// and accuracy) and the metadata that ties the NPZ, the report and the sizes together.
import { basename } from 'node:path';
import {
  kquantMemberNames,
  MANIFEST_FORMAT_VERSION,
  type Manifest,
  type ModelInfo,
  memberNames,
  type WeightEntry,
} from '../formats/manifest';
import type { CheckpointTensor } from '../formats/safetensors';
import type { AccuracyReport } from '../report';
import type { weightAccuracy } from './accuracy';
import type { OutputPaths } from './names';
import { TOOL_VERSION } from './options';
import type { KeepPlan, QuantPlan } from './plan';

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** The entry of a tensor stored as it is (float, or widened from bf16). */
export function keptEntry(p: KeepPlan, t: CheckpointTensor, layer: number | undefined, crc: number): WeightEntry {
  const names = memberNames(p.name, null);
  return {
    name: p.name,
    shape: p.shape,
    bit_width: p.bits,
    q: names.q,
    q_scales: null,
    q_zero_point: null,
    quantization: { type: 'none', bits: p.bits, method: 'none' },
    source: { tensor: p.name, dtype: t.dtype, file: basename(t.file) },
    ...(layer !== undefined ? { layer } : {}),
    checksums: { q: hex(crc) },
  };
}

/** The entry of a quantized tensor: its members, their CRC-32s and its accuracy. */
export function quantizedEntry(
  p: QuantPlan,
  t: CheckpointTensor,
  layer: number | undefined,
  npScale: 'float16' | 'float32',
  crc: { q: number; scales: number; zeros: number },
  accuracy: ReturnType<typeof weightAccuracy>,
): WeightEntry {
  const names = memberNames(p.name, p.bits);
  return {
    name: p.name,
    shape: p.shape,
    bit_width: p.bits,
    q: names.q,
    q_scales: names.q_scales,
    q_zero_point: names.q_zero_point,
    quantization: {
      type: p.type,
      bits: p.bits,
      method: p.method,
      group_size: p.groupSize,
      scale_dtype: npScale,
      rounding: p.mode,
    },
    source: { tensor: p.name, dtype: t.dtype, file: basename(t.file) },
    ...(layer !== undefined ? { layer } : {}),
    checksums: { q: hex(crc.q), q_scales: hex(crc.scales), q_zero_point: hex(crc.zeros) },
    accuracy,
  };
}

/** The entry of a kquant tensor: q, q_codes, q_d, q_dmin (q_scales / q_zero_point null, so old readers refuse it). */
export function kquantEntry(
  p: QuantPlan,
  t: CheckpointTensor,
  layer: number | undefined,
  crc: { q: number; q_codes: number; q_d: number; q_dmin: number },
  accuracy: ReturnType<typeof weightAccuracy>,
): WeightEntry {
  const kq = p.kq!;
  const names = kquantMemberNames(p.name, p.bits);
  return {
    name: p.name,
    shape: p.shape,
    bit_width: p.bits,
    q: names.q,
    q_scales: null,
    q_zero_point: null,
    q_codes: names.q_codes,
    q_d: names.q_d,
    q_dmin: names.q_dmin,
    quantization: {
      type: 'kquant',
      bits: p.bits,
      method: 'asymmetric',
      group_size: kq.group,
      super_size: kq.super,
      scale_bits: kq.scaleBits,
      min_bits: kq.minBits,
      scale_dtype: 'float16',
    },
    source: { tensor: p.name, dtype: t.dtype, file: basename(t.file) },
    ...(layer !== undefined ? { layer } : {}),
    checksums: { q: hex(crc.q), q_codes: hex(crc.q_codes), q_d: hex(crc.q_d), q_dmin: hex(crc.q_dmin) },
    accuracy,
  };
}

export function buildManifest(
  model: ModelInfo,
  entries: WeightEntry[],
  paths: OutputPaths,
  report: AccuracyReport,
): Manifest {
  return {
    format_version: MANIFEST_FORMAT_VERSION,
    model,
    weights: entries,
    metadata: {
      npz: basename(paths.npz),
      created_by: `apl-quant ${TOOL_VERSION}`,
      created_at: new Date().toISOString(),
      accuracy_report: basename(paths.report),
      default_bits: report.bits,
      default_group_size: report.group_size,
      embeddings_bits: report.embeddings_bits,
      total_params: report.sizes.params,
      source_bytes: report.sizes.source_bytes,
      output_bytes: report.sizes.output_bytes,
      bits_per_weight: report.sizes.bits_per_weight,
      backend: report.backend,
      accuracy_pass: report.pass,
    },
  };
}
