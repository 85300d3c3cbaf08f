// The extension's entry: activate() creates the output channel, the webviews, the status bar item and the
// command registry, starts the language client without waiting for it, and logs how long activation took.
// Everything heavier (the language client library, each command's module) loads on first use.
import * as vscode from 'vscode';
import type { ConvertEvent } from '../../server/src/protocol';
import { registerCommands } from './commands';
import { OUTPUT_CHANNEL } from './constants';
import type { ClientContext, ConvertOutcome } from './context';
import type { ConvertRequest } from './convert/options';
import { currentDefaults } from './convert/picks';
import { startLanguageClient, stopLanguageClient } from './languageClient';
import { createBackendStatus } from './statusBar';
import { registerConvertTaskProvider, runConversion, stopAllConversions } from './tasks/convertTask';
import { type Ui, ui } from './ui';
import { activateWebviews } from './webviews';

/** What activate() returns (`vscode.extensions.getExtension('apl.apl-quantizer').exports`): used by the tests. */
export interface AplApi {
  /** Milliseconds activate() took. */
  activationMs: number;
  /** Settles when the language client has started (true) or failed / has no server (false). */
  languageClientReady: Promise<boolean>;
  /** Fires for every event of a running conversion. */
  onDidConvertEvent: vscode.Event<ConvertEvent>;
  /** Runs a conversion without quick picks (as `apl.convertModel` with an options object). */
  convert(req: Partial<ConvertRequest> & { model: string }, token?: vscode.CancellationToken): Promise<ConvertOutcome>;
  /** For the real-VS-Code tests only: the prompts the commands use, replaceable to answer them. */
  testing: { ui: Ui };
}

export function activate(context: vscode.ExtensionContext): AplApi {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel(OUTPUT_CHANNEL, { log: true });
  const convertEvents = new vscode.EventEmitter<ConvertEvent>();
  context.subscriptions.push(log, convertEvents);
  const webviews = activateWebviews(context, log);
  const refreshBackendStatus = createBackendStatus(context, log);
  const ctx: ClientContext = {
    extension: context,
    log,
    webviews,
    conversions: { run: (req, token) => runConversion(ctx, req, token) },
    convertEvents,
    refreshBackendStatus,
  };
  registerCommands(vscode, ctx);
  context.subscriptions.push(
    registerConvertTaskProvider(ctx, () => {
      const d = currentDefaults(ctx);
      return { bits: d.bits, groupSize: d.groupSize, symmetric: d.symmetric, backend: d.backend, outDir: d.outDir };
    }),
  );
  const languageClientReady = startLanguageClient(context, log).catch((e) => {
    log.error(`language client: ${(e as Error).message}`);
    return false;
  });
  const activationMs = performance.now() - t0;
  log.info(`APL Quantizer ${context.extension.packageJSON.version} activated in ${activationMs.toFixed(1)} ms`);
  return {
    activationMs,
    languageClientReady,
    onDidConvertEvent: convertEvents.event,
    convert: async (req, token) => {
      const mod = await import('./commands/convertModel');
      const out = await mod.default(ctx, { ...req, cancellation: token, noReport: true });
      if (!out) throw new Error('conversion did not start');
      return out;
    },
    testing: { ui },
  };
}

export function deactivate(): Promise<void> {
  stopAllConversions();
  return stopLanguageClient();
}
