// The status bar item showing the quantization backend (CPU and its SIMD level, or the CUDA device); clicking it
// runs apl.selectBackend. The engine info comes from a child process (the native addon is loaded there, never in
// the extension host), so a broken addon cannot take the editor down and activation never waits for it.
import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import { CommandIds } from '../../server/src/protocol';
import { backendLabel, type EngineInfoLike, parseEngineInfo } from './backendInfo';

export function createBackendStatus(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): () => void {
  const item = vscode.window.createStatusBarItem('apl.backend', vscode.StatusBarAlignment.Right, 100);
  item.name = 'APL Quantizer Backend';
  item.command = CommandIds.selectBackend;
  context.subscriptions.push(item);
  let info: EngineInfoLike | undefined;
  let probing = false;

  const render = () => {
    const setting = vscode.workspace.getConfiguration('apl').get<string>('backend', 'auto');
    const { text, tooltip, warning } = backendLabel(setting, info);
    item.text = `$(${warning ? 'warning' : 'chip'}) ${text}`;
    item.tooltip = `${tooltip}\nClick to choose the backend (apl.backend).`;
    item.show();
  };
  const probe = () => {
    if (probing) return;
    probing = true;
    const cli = context.asAbsolutePath('dist/cli.js');
    execFile(
      process.execPath,
      [cli, 'info', '--json'],
      { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', APL_CLI_MAIN: '1' }, timeout: 20_000, maxBuffer: 1 << 20 },
      (err, stdout) => {
        probing = false;
        info = parseEngineInfo(stdout);
        if (!info)
          log.info(
            `engine info unavailable (${err ? err.message.split('\n')[0] : 'no JSON'}); showing the setting only`,
          );
        else log.info(`engine: ${JSON.stringify(info)}`);
        render();
      },
    );
  };
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('apl.backend')) render();
    }),
  );
  render();
  probe();
  return () => {
    render();
    probe();
  };
}
