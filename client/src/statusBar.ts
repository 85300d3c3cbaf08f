// The status bar item showing the quantization backend (CPU and its SIMD level, or the CUDA device); clicking it
// runs apl.selectBackend. The engine info comes from a child process (the native addon is loaded there, never in
// the extension host), so a broken addon cannot take the editor down and activation never waits for it.
import { execFile } from 'node:child_process';
import * as vscode from 'vscode';
import { CommandIds } from '../../server/src/protocol';
import { ADDON_PATHS, addonProbeScript, backendLabel, type EngineInfoLike, parseEngineInfo } from './backendInfo';
import { onBackendSettingChange, rawBackendSetting } from './settings';

let latest: EngineInfoLike | undefined;
let probed: Promise<void> | undefined;
let markProbed: (() => void) | undefined;

/** The engine info of the last probe, waiting (at most `ms`) for the first one; undefined when unknown. */
export async function engineInfo(ms = 20_000): Promise<EngineInfoLike | undefined> {
  if (probed) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([probed, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }
  return latest;
}

export function createBackendStatus(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): () => void {
  const item = vscode.window.createStatusBarItem('apl.backend', vscode.StatusBarAlignment.Right, 100);
  item.name = 'APL Quantizer Backend';
  item.command = CommandIds.selectBackend;
  context.subscriptions.push(item);
  let info: EngineInfoLike | undefined;
  let probing = false;
  probed = new Promise<void>((r) => {
    markProbed = r;
  });

  const render = () => {
    const setting = rawBackendSetting();
    const { text, tooltip, warning } = backendLabel(setting, info);
    item.text = `$(${warning ? 'warning' : 'chip'}) ${text}`;
    item.tooltip = `${tooltip}\nClick to choose the backend (apl.backend).`;
    item.show();
  };
  const env = { ...process.env, ELECTRON_RUN_AS_NODE: '1', APL_CLI_MAIN: '1' };
  const opts = { env, timeout: 20_000, maxBuffer: 1 << 20 };
  const done = (found: EngineInfoLike | undefined, how: string) => {
    probing = false;
    info = found;
    latest = found;
    markProbed?.();
    if (info) log.info(`engine (${how}): ${JSON.stringify(info)}`);
    else log.info('engine info unavailable; the status bar shows the setting only');
    render();
  };
  // `apl-quant info --json` when the CLI has it, else the addon's engineInfo() in a `node -e` child.
  const probe = () => {
    if (probing) return;
    probing = true;
    execFile(process.execPath, [context.asAbsolutePath('dist/cli.js'), 'info', '--json'], opts, (err, stdout) => {
      const viaCli = err ? undefined : parseEngineInfo(stdout);
      if (viaCli) return done(viaCli, 'apl-quant info');
      const script = addonProbeScript(ADDON_PATHS.map((p) => context.asAbsolutePath(p)));
      execFile(process.execPath, ['-e', script], opts, (err2, out2) =>
        done(err2 ? undefined : parseEngineInfo(out2), 'addon'),
      );
    });
  };
  context.subscriptions.push(onBackendSettingChange(render));
  render();
  // Spawning the probe costs milliseconds of fork: keep it off the activation path.
  setImmediate(probe);
  return () => {
    render();
    probe();
  };
}
