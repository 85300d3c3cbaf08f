// The conversion as a VS Code task: a CustomExecution whose Pseudoterminal drives a child process of the CLI
// (`dist/cli-convert.js convert … --json-progress`, convert's own bundle, run by the extension host's own Node with
// ELECTRON_RUN_AS_NODE=1), so the extension host never blocks. Events go to the terminal, a cancellable progress
// notification and `ctx.convertEvents`. Cancel sends SIGTERM; the CLI guarantees that nothing half-written stays behind.
import { type ChildProcess, spawn } from 'node:child_process';
import * as vscode from 'vscode';
import { CONVERT_TASK_TYPE, HF_TOKEN_SECRET } from '../constants';
import type { ClientContext, ConvertOutcome, ConvertResultEvent } from '../context';
import { type ConvertRequest, checkRequest, cliArgs, expandWorkspaceFolder } from '../convert/options';
import { describeEvent, LineSplitter, ProgressTracker, parseEventLine } from '../convert/progress';

export type { ConvertOutcome, ConvertResultEvent } from '../context';

/** Running converter children, so deactivate() can stop them (the CLI then removes its temporaries). */
const running = new Set<ChildProcess>();

/** Sends SIGTERM to every running conversion (extension deactivation). */
export function stopAllConversions(): void {
  for (const c of running) c.kill('SIGTERM');
}

/** How long the task terminal may take to open before the child is started without it. */
const OPEN_TIMEOUT_MS = 30_000;
/** How long a cancelled child may take to clean up after SIGTERM before it is killed. */
const KILL_AFTER_MS = 15_000;
const STDERR_KEEP = 4000;
/**
 * The least time between the terminal opening and its closing: VS Code reports a terminal that exits sooner
 * (500 ms) as "The terminal process failed to launch", which reads as a broken extension rather than the error.
 */
const MIN_OPEN_MS = 1000;

/** One conversion: the pseudoterminal that starts the child when it opens, and what the caller controls. */
export interface Conversion {
  pty: vscode.Pseudoterminal;
  /** Settles when the child has exited (never rejects). */
  outcome: Promise<ConvertOutcome>;
  /** Starts the child now (idempotent; the terminal's open() calls it). */
  start(): void;
  readonly started: boolean;
  cancel(): void;
  /** A progress notification to drive with stage, percent and bytes. */
  setProgress(p: vscode.Progress<{ message?: string; increment?: number }>): void;
}

/** The conversion behind a pseudoterminal (the task's CustomExecution). The token goes to the child as HF_TOKEN. */
export function createConversion(ctx: ClientContext, req: ConvertRequest, hfToken: string | undefined): Conversion {
  // Convert's own bundle (bin/apl-quant.js takes it too): the process starts without compiling the other commands.
  const cli = ctx.extension.asAbsolutePath('dist/cli-convert.js');
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number>();
  const line = (s: string) => write.fire(`${s.replace(/\r?\n/g, '\r\n')}\r\n`);

  let child: ChildProcess | undefined;
  let cancelled = false;
  let killTimer: NodeJS.Timeout | undefined;
  let started = false;
  let startedAt = 0;
  let settle!: (o: ConvertOutcome) => void;
  const outcome = new Promise<ConvertOutcome>((r) => {
    settle = r;
  });
  const tracker = new ProgressTracker();
  let progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  let reported = 0;

  const cancel = () => {
    if (cancelled) return;
    cancelled = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      line('Cancelling…');
      ctx.log.info('conversion cancelled: SIGTERM to the converter');
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child?.kill('SIGKILL'), KILL_AFTER_MS);
    } else if (!child) {
      settle({ status: 'cancelled', exitCode: null });
    }
  };

  const start = () => {
    if (started) return;
    started = true;
    startedAt = Date.now();
    if (cancelled) {
      settle({ status: 'cancelled', exitCode: null });
      close.fire(1);
      return;
    }
    const argv = [cli, ...cliArgs(req)];
    // Logged without the environment: the token never reaches a log.
    ctx.log.info(`apl-quant ${argv.slice(1).join(' ')}`);
    const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_RUN_AS_NODE: '1', APL_CLI_MAIN: '1' };
    if (hfToken) env.HF_TOKEN = hfToken;
    let result: ConvertResultEvent | undefined;
    let error: { code: string; message: string } | undefined;
    let stderr = '';
    try {
      child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    } catch (e) {
      const message = `could not start the converter: ${(e as Error).message}`;
      line(message);
      settle({ status: 'failed', error: { code: 'internal', message }, exitCode: null });
      close.fire(1);
      return;
    }
    const proc = child;
    running.add(proc);
    const out = new LineSplitter();
    const onLine = (l: string) => {
      const e = parseEventLine(l);
      if (!e) {
        if (l.trim()) line(l);
        return;
      }
      if (e.type === 'result') result = e;
      if (e.type === 'error') error = { code: e.code, message: e.message };
      ctx.convertEvents.fire(e);
      const text = describeEvent(e);
      if (text) line(text);
      const u = tracker.update(e);
      if (u && progress) {
        progress.report({ message: u.message, increment: u.percent - reported });
        reported = u.percent;
      }
    };
    child.stdout?.setEncoding('utf8').on('data', (d: string) => out.push(d).forEach(onLine));
    const errLines = new LineSplitter();
    const onErrLine = (l: string) => {
      // The CLI repeats its error event on stderr ("apl-quant convert: …"): the terminal shows it once.
      const first = error?.message.split('\n')[0];
      if (first && l.includes(first)) return;
      write.fire(`\x1b[31m${l}\x1b[0m\r\n`);
    };
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-STDERR_KEEP);
      errLines.push(d).forEach(onErrLine);
    });
    child.once('error', (e) => {
      error ??= { code: 'internal', message: `could not start the converter: ${e.message}` };
    });
    child.once('close', (code, signal) => {
      running.delete(proc);
      out.flush().forEach(onLine);
      errLines.flush().forEach(onErrLine);
      if (killTimer) clearTimeout(killTimer);
      let o: ConvertOutcome;
      if (code === 0 && result) o = { status: 'ok', result, exitCode: code };
      else if (cancelled || error?.code === 'cancelled') o = { status: 'cancelled', exitCode: code };
      else {
        const message = error?.message ?? (stderr.trim().split('\n').slice(-3).join('\n') || `exit ${code ?? signal}`);
        o = { status: 'failed', error: { code: error?.code ?? 'internal', message }, exitCode: code };
      }
      ctx.log.info(`converter exited (${code ?? signal}): ${o.status}${o.error ? ` (${o.error.code})` : ''}`);
      const failedCheck = o.status === 'ok' && !o.result?.pass;
      line(
        o.status === 'ok'
          ? failedCheck
            ? 'Conversion finished, but the accuracy check FAILED (see the report).'
            : 'Conversion finished.'
          : o.status === 'cancelled'
            ? 'Conversion cancelled.'
            : 'Failed.',
      );
      // A failed accuracy check does not end with a green tick: the task's exit status is 1.
      const status = failedCheck ? 1 : (code ?? 1);
      // Settle only once the task has ended: a caller that converts the same model and bits again right away
      // (replace after "already exists") would otherwise meet the still-active task and VS Code's "already active".
      setTimeout(
        () => {
          close.fire(status);
          settle(o);
        },
        Math.max(0, startedAt + MIN_OPEN_MS - Date.now()),
      );
    });
  };

  const pty: vscode.Pseudoterminal = {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: () => start(),
    close: () => cancel(), // the user closed the terminal or terminated the task
  };
  void outcome.then(() => setImmediate(() => write.dispose()));
  return {
    pty,
    outcome,
    start,
    get started() {
      return started;
    },
    cancel,
    setProgress: (p) => {
      progress = p;
    },
  };
}

/** Runs one conversion as a task with a progress notification; resolves when the child has exited (never rejects). */
export async function runConversion(
  ctx: ClientContext,
  req: ConvertRequest,
  token?: vscode.CancellationToken,
): Promise<ConvertOutcome> {
  const hfToken = await ctx.extension.secrets.get(HF_TOKEN_SECRET);
  const conv = createConversion(ctx, req, hfToken);
  const { outcome, cancel, start } = conv;
  const task = new vscode.Task(
    { type: CONVERT_TASK_TYPE, model: req.model, bits: req.bits },
    vscode.workspace.workspaceFolders?.[0] ?? vscode.TaskScope.Workspace,
    `convert ${req.model} (q${req.bits})`,
    'APL',
    new vscode.CustomExecution(async () => conv.pty),
  );
  task.presentationOptions = {
    reveal: vscode.TaskRevealKind.Always,
    panel: vscode.TaskPanelKind.Dedicated,
    clear: true,
  };
  token?.onCancellationRequested(cancel);

  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `APL: Converting ${req.model}`, cancellable: true },
    async (p, notificationToken) => {
      conv.setProgress(p);
      notificationToken.onCancellationRequested(cancel);
      try {
        await vscode.tasks.executeTask(task);
        // A host whose terminal never opens must not hang the command: start without the terminal.
        const opened = setTimeout(() => {
          if (conv.started) return;
          ctx.log.warn('the task terminal did not open; running the converter without it');
          start();
        }, OPEN_TIMEOUT_MS);
        void outcome.finally(() => clearTimeout(opened));
      } catch (e) {
        // No task system (an unusual host): run the child without a terminal.
        ctx.log.warn(`could not run the conversion as a task (${(e as Error).message}); running it directly`);
        start();
      }
      await outcome;
    },
  );
  return outcome;
}

/**
 * Tasks of type `apl-convert` from tasks.json (`{ "type": "apl-convert", "model": "tinyllama", "bits": 4, … }`): the
 * definition's fields over the `apl.convert.*` defaults; a bad definition runs as a task that prints the problem.
 */
export function registerConvertTaskProvider(
  ctx: ClientContext,
  defaults: () => Partial<ConvertRequest>,
): vscode.Disposable {
  return vscode.tasks.registerTaskProvider(CONVERT_TASK_TYPE, {
    provideTasks: () => [],
    resolveTask: (task) => {
      const def = task.definition as Partial<ConvertRequest> & { type: string };
      const folder = typeof task.scope === 'object' ? task.scope.uri.fsPath : undefined;
      const fields = Object.fromEntries(
        Object.entries(def)
          .filter(([k, v]) => k !== 'type' && v !== undefined)
          .map(([k, v]) => [k, typeof v === 'string' ? expandWorkspaceFolder(v, folder) : v]),
      );
      const req = { ...defaults(), ...fields } as ConvertRequest;
      const problem = checkRequest(req);
      const execution = new vscode.CustomExecution(async () => {
        if (problem) return failingPty(`apl-convert task "${task.name}": ${problem}`);
        return createConversion(ctx, req, await ctx.extension.secrets.get(HF_TOKEN_SECRET)).pty;
      });
      return new vscode.Task(def, task.scope ?? vscode.TaskScope.Workspace, task.name, 'APL', execution);
    },
  });
}

function failingPty(message: string): vscode.Pseudoterminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number>();
  return {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: () => {
      write.fire(`\x1b[31m${message}\x1b[0m\r\n`);
      close.fire(2);
    },
    close: () => undefined,
  };
}
