// Open manifests and what the language service knows of each, parsed once per document version. The NPZ and
// report loaded for an earlier version are kept until reloaded, so a hover right after an edit still has them.
// `ready()` parses in slices (./slices.ts), sharing one parse per version among the requests and the validation
// that want it; `get()` is the same synchronously (it finishes a parse under way rather than starting another).
import { fileURLToPath } from 'node:url';
import type { ManifestDoc, ManifestLanguageService, ManifestState } from '../manifest';
import { SLICE_MS, SlicedTask } from './slices';

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

interface Parse {
  version: number;
  task: SlicedTask<DocState>;
}

export class DocumentCache {
  private readonly states = new Map<string, DocState>();
  /** The parse under way of each document's latest asked-for version (kept until done). */
  private readonly parsing = new Map<string, Parse>();

  constructor(
    private readonly service: ManifestLanguageService,
    private readonly open: (uri: string) => OpenDocument | undefined,
    private readonly sliceMs = SLICE_MS,
  ) {}

  /** State of the document's current version (parsing once per version); undefined when it is not open. */
  get(uri: string): DocState | undefined {
    const td = this.open(uri);
    if (!td) return undefined;
    const st = this.states.get(uri);
    if (st && st.version === td.version) return st;
    const p = this.parsing.get(uri);
    if (p && p.version === td.version) return p.task.finish();
    return this.install(uri, td.version, this.service.parseManifest(td.getText()));
  }

  /**
   * State of the document's current version, parsed (tree and line index included) in slices; undefined when it is
   * not open, or when `alive()` turned false first (checked between slices: the parse pauses if nobody else waits).
   */
  async ready(uri: string, alive?: () => boolean): Promise<DocState | undefined> {
    const td = this.open(uri);
    if (!td) return undefined;
    let p = this.parsing.get(uri);
    if (!p || p.version !== td.version) {
      const st = this.states.get(uri);
      if (st && st.version === td.version) return st;
      p = { version: td.version, task: new SlicedTask(this.parseSteps(uri, td.version, td.getText()), this.sliceMs) };
      this.parsing.set(uri, p);
    }
    return (await p.task.wait(alive))?.value;
  }

  private *parseSteps(uri: string, version: number, text: string) {
    const doc = yield* this.service.parseSteps(text);
    if (this.parsing.get(uri)?.version === version) this.parsing.delete(uri);
    return this.install(uri, version, doc);
  }

  /** The state of a parsed version; it becomes the document's state unless a later version has one already. */
  private install(uri: string, version: number, doc: ManifestDoc): DocState {
    const st = this.states.get(uri);
    if (st?.version === version) return st;
    const next: DocState = {
      version,
      doc,
      path: uriToPath(uri),
      files: st?.files,
      npz: st?.npz,
      report: st?.report,
      side: st?.side,
    };
    if (!st || st.version < version) this.states.set(uri, next);
    return next;
  }

  /** True while `st` is still the state of the open document's current version. */
  isCurrent(uri: string, st: DocState): boolean {
    return this.states.get(uri) === st && this.open(uri)?.version === st.version;
  }

  delete(uri: string): void {
    this.states.delete(uri);
    this.parsing.delete(uri);
  }

  entries(): IterableIterator<[string, DocState]> {
    return this.states.entries();
  }

  uris(): IterableIterator<string> {
    return this.states.keys();
  }
}
