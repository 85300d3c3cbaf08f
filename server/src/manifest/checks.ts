// Checks across the manifest and the NPZ it describes, beyond what the schema can say: members exist and agree in
// shape and dtype with shape / bit_width / group size; bit_width equals quantization.bits; quantization fields agree;
// no duplicate names or members; the model block agrees with the weights; checksums match the NPZ.
import type { Diagnostic } from 'vscode-languageserver-types';
import { groupsPerRow, matrixView, packedRowBytes } from '../formats/manifest';
import { DiagnosticCodes } from './codes';
import { diag, isObject, layerOf, type ManifestDoc, type Node, valueNode, weightNodes } from './document';
import { isNpzProblem, lookupMember, memberKey, type NpzState } from './npz-index';
import { isReportProblem, type ReportState } from './report';

const ERROR = 1;
const WARNING = 2;
const INFO = 3;

export const MEMBER_FIELDS = ['q', 'q_scales', 'q_zero_point'] as const;
export type MemberField = (typeof MEMBER_FIELDS)[number];

/** Data of an apl.member-missing diagnostic. */
export interface MemberMissingData {
  kind: 'member';
  weight: number;
  field: MemberField;
  member: string;
}
/** Data of an apl.bits-mismatch diagnostic. */
export interface BitsMismatchData {
  kind: 'bits';
  weight: number;
  bitWidth: number;
  bits: number;
}

const QUANT_BITS = new Set([1, 2, 4, 8]);
const FLOAT_DTYPES = new Set(['float16', 'float32', 'float64', 'bfloat16']);

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const shapeStr = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Model fields implied by weight names: [pattern, axis, model key]. */
const MODEL_RULES: [RegExp, number, 'hidden_dim' | 'vocab_size' | 'intermediate_size', number?][] = [
  [/(?:embed_tokens|wte|word_embeddings|lm_head)\.weight$/, 1, 'hidden_dim', 2],
  [/(?:embed_tokens|wte|word_embeddings|lm_head)\.weight$/, 0, 'vocab_size', 2],
  [/(?:q_proj|k_proj|v_proj|gate_proj|up_proj)\.weight$/, 1, 'hidden_dim', 2],
  [/o_proj\.weight$/, 0, 'hidden_dim', 2],
  [/down_proj\.weight$/, 0, 'hidden_dim', 2],
  [/down_proj\.weight$/, 1, 'intermediate_size', 2],
  [/(?:gate_proj|up_proj)\.weight$/, 0, 'intermediate_size', 2],
  [/(?:input_layernorm|post_attention_layernorm|(?:^|\.)norm)\.weight$/, 0, 'hidden_dim', 1],
];

export interface CheckOptions {
  npz?: NpzState;
  report?: ReportState;
}

/** Cross-checks of a parsed manifest. `doc.value` must be the parsed object. */
export function crossCheck(doc: ManifestDoc, opts: CheckOptions): Diagnostic[] {
  const out: Diagnostic[] = [];
  const root = doc.value;
  if (!isObject(root)) return out;
  const lines = doc.lines;
  const at = (
    n: Node | undefined,
    fallback: Node | undefined,
    sev: 1 | 2 | 3,
    code: string,
    msg: string,
    data?: unknown,
  ) => {
    const r = n ?? fallback;
    if (r) out.push(diag(lines, r.offset, r.length, sev, code, msg, data));
  };
  const metaNode = valueNode(doc.root, 'metadata');
  const npzNode = valueNode(metaNode, 'npz');
  const npz = opts.npz;
  const index = npz && !isNpzProblem(npz) ? npz : undefined;

  if (isNpzProblem(npz)) {
    const code = npz.problem === 'missing' ? DiagnosticCodes.npzMissing : DiagnosticCodes.npzUnreadable;
    at(npzNode, metaNode ?? doc.root, ERROR, code, npz.message);
  }
  if (isReportProblem(opts.report)) {
    const reportNode = valueNode(metaNode, 'accuracy_report');
    at(reportNode, metaNode ?? doc.root, WARNING, DiagnosticCodes.reportMissing, opts.report.message);
  }

  const weights = Array.isArray(root.weights) ? root.weights : [];
  const nodes = weightNodes(doc);
  const names = new Map<string, number>();
  const memberUse = new Map<string, number>();
  const layers = new Map<number, number>(); // layer → first weight index
  const modelSeen = new Set<string>();
  const model = isObject(root.model) ? root.model : undefined;
  const modelNode = valueNode(doc.root, 'model');
  let qProjRows: number | undefined;
  let kProjRows: number | undefined;
  let kProjWeight = -1;

  for (let i = 0; i < weights.length && i < nodes.length; i++) {
    const w = weights[i];
    const wn = nodes[i];
    if (!isObject(w) || wn.type !== 'object') continue;
    const name = typeof w.name === 'string' ? w.name : undefined;
    const nameNode = valueNode(wn, 'name');
    const wLabel = name ?? `weights[${i}]`;

    // Duplicate names.
    if (name !== undefined) {
      const first = names.get(name);
      if (first !== undefined) {
        const line = lines.positionAt(nodes[first].offset).line + 1;
        at(
          nameNode,
          wn,
          ERROR,
          DiagnosticCodes.duplicateName,
          `Duplicate weight name "${name}" (also at line ${line})`,
        );
      } else names.set(name, i);
    }

    const shape = isShape(w.shape) ? w.shape : undefined;
    const q = isObject(w.quantization) ? w.quantization : undefined;
    const qNode = valueNode(wn, 'quantization');
    const type = q?.type;
    const bits = typeof q?.bits === 'number' ? q.bits : undefined;
    const bitWidth = typeof w.bit_width === 'number' ? w.bit_width : undefined;

    // bit_width vs quantization.bits.
    if (bits !== undefined && bitWidth !== undefined && bits !== bitWidth) {
      const data: BitsMismatchData = { kind: 'bits', weight: i, bitWidth, bits };
      at(
        valueNode(wn, 'bit_width'),
        wn,
        ERROR,
        DiagnosticCodes.bitsMismatch,
        `bit_width ${bitWidth} differs from quantization.bits ${bits}`,
        data,
      );
    }

    // Quantization fields agree with each other.
    const quantized = type === 'perrow_int' || type === 'groupwise_int';
    const groupSizeNode = valueNode(qNode, 'group_size');
    let groupSize = typeof q?.group_size === 'number' && q.group_size >= 1 ? q.group_size : undefined;
    const { rows, cols } = shape ? matrixView(shape) : { rows: 0, cols: 0 };
    if (q && type === 'none') {
      if (q.method !== undefined && q.method !== 'none')
        at(
          valueNode(qNode, 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'type none needs method "none"',
        );
      if (bits !== undefined && bits !== 16 && bits !== 32)
        at(
          valueNode(qNode, 'bits'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'type none stores floats: bits must be 16 or 32',
        );
      for (const f of ['q_scales', 'q_zero_point'] as const)
        if (typeof w[f] === 'string')
          at(valueNode(wn, f), wn, WARNING, DiagnosticCodes.quantizationMismatch, `${f} should be null for type none`);
      if (q.group_size !== undefined)
        at(
          groupSizeNode,
          qNode,
          WARNING,
          DiagnosticCodes.quantizationMismatch,
          'group_size is meaningless for type none',
        );
    } else if (q && quantized) {
      if (bits !== undefined && !QUANT_BITS.has(bits))
        at(
          valueNode(qNode, 'bits'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          `${type} needs bits 1, 2, 4 or 8`,
        );
      if (q.method === 'none')
        at(
          valueNode(qNode, 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          `method "none" needs type none`,
        );
      if (q.method === 'sign' && bits !== undefined && bits !== 1)
        at(
          valueNode(qNode, 'method'),
          qNode,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'method "sign" is the 1-bit scheme',
        );
      for (const f of ['q_scales', 'q_zero_point'] as const)
        if (w[f] === null)
          at(
            valueNode(wn, f),
            wn,
            ERROR,
            DiagnosticCodes.quantizationMismatch,
            `${f} is needed for a quantized weight`,
          );
      if (type === 'groupwise_int' && groupSize === undefined && q.group_size === undefined)
        at(
          valueNode(wn, 'quantization') ? propertyKey(wn, 'quantization') : wn,
          wn,
          ERROR,
          DiagnosticCodes.quantizationMismatch,
          'groupwise_int needs group_size',
        );
      if (type === 'perrow_int') {
        if (groupSize !== undefined && shape && groupSize !== cols)
          at(
            groupSizeNode,
            qNode,
            WARNING,
            DiagnosticCodes.quantizationMismatch,
            `perrow_int has one group per row: group_size should be ${cols}, the row length`,
          );
        if (shape) groupSize = cols;
      }
    }

    // Layers.
    const layer = layerOf(w);
    if (layer !== undefined && !layers.has(layer)) layers.set(layer, i);
    if (typeof w.layer === 'number' && name) {
      const fromName = layerOf({ name });
      if (fromName !== undefined && fromName !== w.layer)
        at(
          valueNode(wn, 'layer'),
          wn,
          WARNING,
          DiagnosticCodes.modelMismatch,
          `layer ${w.layer} disagrees with the name's layer ${fromName}`,
        );
    }

    // The model block against shapes implied by names.
    if (model && name && shape) {
      for (const [re, axis, key, ndim] of MODEL_RULES) {
        if (modelSeen.has(key) || typeof model[key] !== 'number' || shape.length !== ndim || !re.test(name)) continue;
        if (shape[axis] !== model[key]) {
          modelSeen.add(key);
          at(
            valueNode(modelNode, key),
            modelNode,
            ERROR,
            DiagnosticCodes.modelMismatch,
            `model.${key} is ${model[key]} but ${name} has shape ${shapeStr(shape)} (line ${lines.positionAt(wn.offset).line + 1})`,
          );
        }
      }
      if (shape.length === 2 && /(?:^|\.)q_proj\.weight$/.test(name) && qProjRows === undefined) qProjRows = shape[0];
      if (shape.length === 2 && /(?:^|\.)k_proj\.weight$/.test(name) && kProjRows === undefined) {
        kProjRows = shape[0];
        kProjWeight = i;
      }
    }

    // Members: duplicates, existence, dtype, shape, checksums.
    for (const f of MEMBER_FIELDS) {
      const member = w[f];
      if (typeof member !== 'string' || !member) continue;
      const node = valueNode(wn, f);
      const key = memberKey(member);
      const firstUse = memberUse.get(key);
      if (firstUse !== undefined && firstUse !== i)
        at(
          node,
          wn,
          WARNING,
          DiagnosticCodes.duplicateMember,
          `Member "${member}" is also used by weights[${firstUse}]`,
        );
      else memberUse.set(key, i);
      if (!index) continue;
      const info = lookupMember(index, member);
      if (!info) {
        const data: MemberMissingData = { kind: 'member', weight: i, field: f, member };
        at(node, wn, ERROR, DiagnosticCodes.memberMissing, `The NPZ has no member "${member}"`, data);
        continue;
      }
      if (info.error) {
        at(node, wn, ERROR, DiagnosticCodes.npzUnreadable, `Member "${member}" cannot be read: ${info.error}`);
        continue;
      }
      const checksums = isObject(w.checksums) ? w.checksums : undefined;
      const expectedCrc = checksums?.[f];
      if (typeof expectedCrc === 'string' && info.crc32 !== undefined) {
        const actual = (info.crc32 >>> 0).toString(16).padStart(8, '0');
        if (actual !== expectedCrc.toLowerCase())
          at(
            node,
            wn,
            ERROR,
            DiagnosticCodes.npzChanged,
            `Member "${member}" changed since the manifest was written (CRC-32 ${actual}, manifest says ${expectedCrc})`,
          );
      }
      if (!shape || !q) continue;
      let wantDtype: string[];
      let wantShapes: number[][];
      if (type === 'none') {
        wantDtype = bits === 16 ? ['float16', 'bfloat16'] : bits === 32 ? ['float32'] : [...FLOAT_DTYPES];
        wantShapes = f === 'q' ? [shape] : [];
      } else if (quantized && bits !== undefined && QUANT_BITS.has(bits)) {
        const lead = shape.slice(0, -1);
        if (f === 'q') {
          wantDtype = ['uint8'];
          const packed = packedRowBytes(cols, bits);
          wantShapes = [
            [rows, packed],
            [...lead, packed],
          ];
        } else {
          wantDtype = [q.scale_dtype === 'float32' ? 'float32' : 'float16'];
          if (groupSize === undefined) wantShapes = [];
          else {
            const groups = groupsPerRow(cols, groupSize);
            wantShapes = [
              [rows, groups],
              [...lead, groups],
            ];
          }
        }
        if (shape.length === 0) wantShapes.push(f === 'q' ? [packedRowBytes(1, bits)] : [1]);
      } else continue;
      if (!wantDtype.includes(info.dtype))
        at(
          node,
          wn,
          ERROR,
          DiagnosticCodes.dtypeMismatch,
          `Member "${member}" is ${info.dtype}; ${f} of ${wLabel} should be ${wantDtype.join(' or ')}`,
        );
      if (wantShapes.length && !wantShapes.some((s) => sameShape(s, info.shape)))
        at(
          node,
          wn,
          ERROR,
          DiagnosticCodes.shapeMismatch,
          `Member "${member}" has shape ${shapeStr(info.shape)}; ${f} of ${wLabel} should be ${shapeStr(wantShapes[0])}`,
        );
    }
  }

  // Layers present against model.num_layers.
  if (model && typeof model.num_layers === 'number') {
    const n = model.num_layers;
    const numNode = valueNode(modelNode, 'num_layers');
    for (const [layer, i] of layers) {
      if (layer >= n) {
        const wn = nodes[i];
        at(
          valueNode(wn, 'layer') ?? valueNode(wn, 'name'),
          wn,
          ERROR,
          DiagnosticCodes.modelMismatch,
          `Layer ${layer} is outside model.num_layers ${n}`,
        );
      }
    }
    if (layers.size > 0) {
      const missing: number[] = [];
      for (let l = 0; l < n && missing.length < 1000; l++) if (!layers.has(l)) missing.push(l);
      if (missing.length)
        at(
          numNode,
          modelNode,
          WARNING,
          DiagnosticCodes.modelMismatch,
          `model.num_layers is ${n} but ${missing.length} layer(s) have no weights (${rangesStr(missing)})`,
        );
    }
  }
  if (
    model &&
    qProjRows &&
    kProjRows &&
    typeof model.num_heads === 'number' &&
    typeof model.num_kv_heads === 'number'
  ) {
    if (kProjRows * model.num_heads !== qProjRows * model.num_kv_heads)
      at(
        valueNode(modelNode, 'num_kv_heads'),
        modelNode,
        ERROR,
        DiagnosticCodes.modelMismatch,
        `num_kv_heads / num_heads = ${model.num_kv_heads}/${model.num_heads} disagrees with k_proj rows / q_proj rows = ${kProjRows}/${qProjRows} (weights[${kProjWeight}])`,
      );
  }

  // Members no weight refers to.
  if (index) {
    const unused: string[] = [];
    for (const k of index.members.keys()) if (!memberUse.has(k)) unused.push(k);
    if (unused.length)
      at(
        npzNode,
        metaNode ?? doc.root,
        INFO,
        DiagnosticCodes.memberUnreferenced,
        `${unused.length} NPZ member(s) are not referenced by any weight: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`,
      );
  }
  return out;
}

function propertyKey(obj: Node, key: string): Node | undefined {
  const p = obj.children?.find((c) => c.children?.[0]?.value === key);
  return p?.children?.[0];
}

function rangesStr(xs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(i === j ? `${xs[i]}` : `${xs[i]}–${xs[j]}`);
    i = j + 1;
    if (parts.length >= 8) {
      if (i < xs.length) parts.push('…');
      break;
    }
  }
  return parts.join(', ');
}
