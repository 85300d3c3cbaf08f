// Go to definition: from a member name (q, q_scales, q_zero_point) or metadata.npz to the NPZ file (the client
// opens it in the NPZ inspector); from metadata.accuracy_report to the report; from metadata.tokenizer,
// tokenizer_config and generation_config to those files.
import { findNodeAtOffset, getNodePath } from 'jsonc-parser';
import type { Location } from 'vscode-languageserver-types';
import type { ManifestDoc } from './document';
import { isKeyNode } from './hover';

export interface DefinitionOptions {
  npzUri?: string;
  reportUri?: string;
  /** The side files that exist, by metadata key. */
  sideUris?: Record<string, string>;
}

export function definition(doc: ManifestDoc, offset: number, opts: DefinitionOptions): Location | null {
  if (!doc.root) return null;
  const node = findNodeAtOffset(doc.root, offset, true);
  if (node?.type !== 'string' || isKeyNode(node)) return null;
  const path = getNodePath(node);
  const zero = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  const isMember =
    path.length === 3 &&
    path[0] === 'weights' &&
    (path[2] === 'q' || path[2] === 'q_scales' || path[2] === 'q_zero_point');
  if ((isMember || (path[0] === 'metadata' && path[1] === 'npz' && path.length === 2)) && opts.npzUri)
    return { uri: opts.npzUri, range: zero };
  if (path[0] === 'metadata' && path[1] === 'accuracy_report' && path.length === 2 && opts.reportUri)
    return { uri: opts.reportUri, range: zero };
  const side = path[0] === 'metadata' && path.length === 2 ? opts.sideUris?.[String(path[1])] : undefined;
  if (side) return { uri: side, range: zero };
  return null;
}
