// The command registry: one handler module per command (lazy-loaded on first use, so activation stays light),
// registered in one loop over the table in ./table. This module imports `vscode` only as a type, so the unit
// test can check the table against the handlers and package.json without an editor.
import type * as vscode from 'vscode';
import type { CommandId } from '../../../server/src/protocol';
import type { ClientContext } from '../context';
import { COMMANDS } from './table';

export type CommandHandler = (ctx: ClientContext, ...args: unknown[]) => unknown;
type Loader = () => Promise<{ default: CommandHandler }>;

export const HANDLERS: Record<CommandId, Loader> = {
  'apl.convertModel': () => import('./convertModel'),
  'apl.setHuggingFaceToken': () => import('./setHfToken'),
  'apl.clearHuggingFaceToken': () => import('./clearHfToken'),
  'apl.openAccuracyReport': () => import('./openAccuracyReport'),
  'apl.inspectNpz': () => import('./inspectNpz'),
  'apl.selectBackend': () => import('./selectBackend'),
  'apl.showOutput': () => import('./showOutput'),
  'apl.tryModel': () => import('./tryModel'),
  'apl.evaluateModel': () => import('./evaluateModel'),
};

/** Registers every command of the table. A failing command is logged and shown, then rethrown to its caller. */
export function registerCommands(api: typeof vscode, ctx: ClientContext): void {
  for (const c of COMMANDS) {
    const load = HANDLERS[c.id];
    ctx.extension.subscriptions.push(
      api.commands.registerCommand(c.id, async (...args: unknown[]) => {
        try {
          const mod = await load();
          return await mod.default(ctx, ...args);
        } catch (e) {
          const msg = (e as Error)?.message ?? String(e);
          ctx.log.error(`${c.id}: ${msg}`);
          void api.window.showErrorMessage(`APL: ${c.title}: ${msg}`);
          throw e;
        }
      }),
    );
  }
}
