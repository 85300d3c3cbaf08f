// Open manifests and what the language service knows of each, parsed once per document version. The NPZ and
// report loaded for an earlier version are kept until reloaded, so a hover right after an edit still has them.
import { fileURLToPath } from 'node:url';
import type { ManifestLanguageService, ManifestState } from '../manifest';

export interface DocState extends ManifestState {
  version: number;
}

/** The open document's text and version, as the connection's document manager has it. */
export interface OpenDocument {
  version: number;
  getText(): string;
}

/** The file system path of a `file:` URI; undefined for any other scheme or a malformed URI. */
export function uriToPath(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

export class DocumentCache {
  private readonly states = new Map<string, DocState>();

  constructor(
    private readonly service: ManifestLanguageService,
    private readonly open: (uri: string) => OpenDocument | undefined,
  ) {}

  /** State of the document's current version (parsing once per version); undefined when it is not open. */
  get(uri: string): DocState | undefined {
    const td = this.open(uri);
    if (!td) return undefined;
    const st = this.states.get(uri);
    if (st && st.version === td.version) return st;
    const next: DocState = {
      version: td.version,
      doc: this.service.parseManifest(td.getText()),
      path: uriToPath(uri),
      files: st?.files,
      npz: st?.npz,
      report: st?.report,
    };
    this.states.set(uri, next);
    return next;
  }

  /** True while `st` is still the state of the open document's current version. */
  isCurrent(uri: string, st: DocState): boolean {
    return this.states.get(uri) === st && this.open(uri)?.version === st.version;
  }

  delete(uri: string): void {
    this.states.delete(uri);
  }

  entries(): IterableIterator<[string, DocState]> {
    return this.states.entries();
  }

  uris(): IterableIterator<string> {
    return this.states.keys();
  }
}
