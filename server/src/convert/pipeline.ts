// convertModel: alias | repo id | local folder → <out>/<name>_quantized_q<bits>.npz + _manifest_q<bits>.json +
// _accuracy_q<bits>.json. One tensor at a time (big tensors in row chunks) from the safetensors files through the native
// engine into a streaming NPZ writer, so peak memory follows the largest chunk, not the model. All three outputs are
// written under temporary names and renamed only at the very end; cancellation or any error removes the temporaries
// and leaves an earlier result untouched. Each stage lives in a file of its own; this one only runs them in order.
import { engineInfo } from '../../../native/index';
import { type Checkpoint, openCheckpoint } from '../formats/safetensors';
import type { ConvertEvent } from '../protocol';
import type { AccuracyReport } from '../report';
import { planCarry } from './carry';
import { throwIfCancelled } from './errors';
import { evalStage, evalTextFor } from './eval-stage';
import { buildManifest } from './manifest-builder';
import { outputPaths } from './names';
import { type ConvertOptions, settingsFrom, TOOL_VERSION } from './options';
import { refuseExisting, StagedOutputs } from './outputs';
import { quantizeStage } from './quantize-stage';
import { buildReport } from './report-builder';
import { describeSource, resolveSource } from './source';
import { flushTrace, span } from './trace';

export { type OutputPaths, outputPaths } from './names';
export type { ConvertHooks, ConvertOptions } from './options';
export { TOOL_VERSION } from './options';

/** What the `result` progress event carries (server/src/protocol.ts), plus the whole accuracy report. */
export type ConvertResultSummary = Omit<Extract<ConvertEvent, { type: 'result' }>, 'type'>;
export interface ConvertResult extends ConvertResultSummary {
  accuracy: AccuracyReport;
}

export async function convertModel(
  o: ConvertOptions,
  emit: (e: ConvertEvent) => void,
  signal?: AbortSignal,
): Promise<ConvertResult> {
  const t0 = performance.now();
  span('start', 0); // process start, module and addon load, argument parsing
  // Stage 1, options: checked, defaults applied.
  const settings = settingsFrom(o);
  const { outDir } = settings;
  const info = engineInfo();
  emit({
    type: 'start',
    model: o.source,
    bits: o.bits,
    out: outDir,
    backend: o.backend ?? 'auto',
    version: TOOL_VERSION,
  });
  emit({ type: 'stage', stage: 'resolve', message: o.source });
  throwIfCancelled(signal);

  // Stage 2, source: the output name is known before any download, so an existing result is refused before any work.
  const res = await resolveSource(
    o,
    emit,
    (name) => {
      if (!o.force) refuseExisting(outputPaths(outDir, name, o.bits));
    },
    signal,
  );
  throwIfCancelled(signal);
  const paths = outputPaths(outDir, res.name, o.bits);
  if (!o.force) refuseExisting(paths);
  const model = describeSource(res);
  // --eval: its text is checked now, before any work, so a missing one costs nothing.
  const evalText = o.eval ? evalTextFor(o.eval, res.dir) : undefined;

  // Stage 3, outputs: temporary names, a killed run's leftovers cleared.
  // One conversion at a time into these outputs (out.lock); released by out.discard() whatever happens next.
  const out = StagedOutputs.prepare(outDir, paths);
  out.lock();
  let carry: ReturnType<typeof planCarry> | undefined;
  let ck: Checkpoint | undefined;
  let tReport = 0;
  try {
    carry = planCarry(res.dir, outDir, res.name, o.bits, model.vocab_size);
    for (const message of carry.warnings) emit({ type: 'log', level: 'warn', message });
    // Staged now, so their bytes (a tokenizer.json can be 35 MB) are not held through the quantization.
    carry.stage();
    span('setup', t0);
    const tOpen = performance.now();
    ck = await openCheckpoint(res.dir);
    span('open', tOpen);
    // Stage 4, quantize: every tensor into the NPZ, with its manifest entry and accuracy; the NPZ closed.
    const q = await quantizeStage({
      ck,
      settings,
      npzTmp: out.tmp.npz,
      dir: res.dir,
      npzPath: paths.npz,
      backend: o.backend,
      threads: o.threads,
      emit,
      signal,
      hooks: o.hooks,
      // --eval reads the NPZ right after: written through the page cache, it is read from there.
      npzDirect: !o.eval,
    });

    // Stage 5, describe: the accuracy report and the manifest, under their temporary names.
    tReport = performance.now();
    const report = buildReport(
      {
        source: res,
        settings,
        backend: [...q.backends].join('+') || (info.native ? 'cpu' : 'reference'),
        seconds: (performance.now() - t0) / 1000,
        sourceBytes: q.sourceBytes,
        outputBytes: q.outputBytes,
        totalParams: q.totalParams,
        keptFloat: q.keptFloat,
      },
      q.weights,
      q.sums,
    );
    const { summary } = report;
    emit({
      type: 'stage',
      stage: 'validate',
      message: `${summary.passed}/${summary.weights} weights within tolerance${report.pass ? '' : ` (${summary.failed} over)`}`,
    });
    const manifest = buildManifest(model, q.entries, paths, report);
    Object.assign(manifest.metadata, carry.metadata);
    out.writeJson(report, manifest);
    await o.hooks?.beforeCommit?.(signal);
    throwIfCancelled(signal);

    // Stage 6, commit: the renames; from here on the result is the user's.
    carry.commit();
    out.commit();
    const resultOf = (r: AccuracyReport): ConvertResultSummary => ({
      ...paths,
      pass: r.pass,
      bitsPerWeight: r.sizes.bits_per_weight,
      outputBytes: q.outputBytes,
      sourceBytes: q.sourceBytes,
      seconds: r.seconds,
    });
    // Stage 7 (--eval), end to end: the committed model against the checkpoint just read; the report is rewritten
    // with its figures. A failure is recorded in the report and thrown; the outputs stay.
    if (o.eval && evalText) {
      try {
        await evalStage({
          report,
          paths,
          sourceDir: res.dir,
          text: evalText,
          req: o.eval,
          threads: o.threads,
          backend: o.backend,
          emit,
          signal,
        });
      } catch (e) {
        emit({ type: 'result', ...resultOf(report) });
        throw e;
      }
    }
    const result = resultOf(report);
    span('report', tReport);
    emit({ type: 'result', ...result });
    emit({ type: 'stage', stage: 'done' });
    return { ...result, accuracy: report };
  } finally {
    await ck?.close().catch(() => {});
    out.discard();
    carry?.abort();
    flushTrace();
  }
}
