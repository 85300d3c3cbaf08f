// Starts the manifest language server (dist/server.js, IPC) through vscode-languageclient. Loaded lazily so the
// activation path stays light; a missing or failing server is logged, never fatal to the extension.
import { existsSync } from 'node:fs';
import type * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';

let client: LanguageClient | undefined;

export const MANIFEST_LANGUAGE = 'apl-manifest';

export async function startLanguageClient(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
): Promise<boolean> {
  const module = context.asAbsolutePath('dist/server.js');
  if (!existsSync(module)) {
    log.warn(`language server not found at ${module} (run npm run build)`);
    return false;
  }
  const t0 = performance.now();
  const { LanguageClient, TransportKind } = await import('vscode-languageclient/node');
  client = new LanguageClient(
    'aplManifest',
    'APL Manifest Language Server',
    {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
    },
    {
      documentSelector: [
        { language: MANIFEST_LANGUAGE, scheme: 'file' },
        { language: MANIFEST_LANGUAGE, scheme: 'untitled' },
      ],
      outputChannel: log,
      middleware: {
        // Go to definition on a member name opens the archive in the inspector; select that member there.
        async provideDefinition(doc, pos, token, next) {
          const result = await next(doc, pos, token);
          const target = Array.isArray(result) ? result[0] : result;
          const uri = target && ('targetUri' in target ? target.targetUri : target.uri);
          const word = doc.getWordRangeAtPosition(pos, /"[^"\\]*"/);
          if (uri && word && /\.(npz|safetensors)$/i.test(uri.fsPath)) {
            const { revealMember } = await import('./webviews/inspectorReveal');
            revealMember(uri, doc.getText(word).slice(1, -1));
          }
          return result;
        },
      },
    },
  );
  try {
    await client.start();
    log.info(`language server started in ${(performance.now() - t0).toFixed(0)} ms`);
    return true;
  } catch (e) {
    log.error(`language server failed to start: ${(e as Error).message}`);
    return false;
  }
}

export async function stopLanguageClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop().catch(() => undefined);
}
