// Validation of open manifests in slices (./slices.ts): parse (shared with the requests, ./document-cache.ts), load
// the NPZ and report beside the manifest, validate, publish. Requests are answered between slices. A run stops at the
// next slice once it is superseded (the document was edited or closed, or a newer run of the same document began),
// and publishes only complete results, only while they are still the current version's: a superseded version never
// publishes over a newer one. The newer version has its own run (every edit schedules one, via the debouncer).
import type { Diagnostic } from 'vscode-languageserver-types';
import type { ManifestLanguageService } from '../manifest';
import type { DocState, DocumentCache, OpenDocument } from './document-cache';
import { SLICE_MS, SlicedTask } from './slices';

export interface ValidatorDeps {
  service: ManifestLanguageService;
  states: DocumentCache;
  open: (uri: string) => OpenDocument | undefined;
  /** Loads the NPZ and report beside the manifest into the state (and watches them). */
  loadFiles: (st: DocState) => Promise<void>;
  publish: (uri: string, version: number, diagnostics: Diagnostic[]) => void | Promise<void>;
  sliceMs?: number;
}

export class Validator {
  /** The current run of each document (a number unique across documents and reopenings). */
  private readonly runs = new Map<string, number>();
  private lastRun = 0;

  constructor(private readonly deps: ValidatorDeps) {}

  /** Validates the document's current version and publishes the result, unless superseded first. */
  async validate(uri: string): Promise<void> {
    const { open } = this.deps;
    const version = open(uri)?.version;
    if (version === undefined) return;
    const run = ++this.lastRun;
    this.runs.set(uri, run);
    try {
      await this.run(uri, version, () => this.runs.get(uri) === run && open(uri)?.version === version);
    } finally {
      if (this.runs.get(uri) === run) this.runs.delete(uri);
    }
  }

  private async run(uri: string, version: number, current: () => boolean): Promise<void> {
    const { service, states, loadFiles, publish } = this.deps;
    const st = await states.ready(uri, current);
    if (!st || !current()) return;
    await loadFiles(st);
    if (!current()) return;
    const task = new SlicedTask(service.validationSteps(st), this.deps.sliceMs ?? SLICE_MS);
    const r = await task.wait(() => current() && states.isCurrent(uri, st));
    if (!r || !current() || !states.isCurrent(uri, st)) return;
    st.diagnostics = r.value;
    await publish(uri, version, r.value);
  }

  /** Stops the document's run (closed). */
  cancel(uri: string): void {
    this.runs.delete(uri);
  }

  /** True while a run of the document is under way (for tests). */
  running(uri: string): boolean {
    return this.runs.has(uri);
  }
}
