// The prompts the commands use, behind one object so the real-VS-Code tests can answer them (AplApi.testing.ui)
// while everything else stays the real VS Code UI.
import * as vscode from 'vscode';

/** Extra quick-pick options the commands use: the item Enter picks, and items made from what the user types. */
export interface PickExtras<T extends vscode.QuickPickItem> {
  active?: T;
  /** Items for the typed text (a path, a repo id), shown above the others; [] for none. */
  typed?: (value: string) => T[];
}

/** showQuickPick with PickExtras, on a QuickPick (showQuickPick cannot set the active item or see the typed text). */
function showQuickPick<T extends vscode.QuickPickItem>(
  items: readonly T[] | Thenable<readonly T[]>,
  options?: vscode.QuickPickOptions & PickExtras<T>,
): Thenable<T | undefined> {
  if (!options?.active && !options?.typed) return vscode.window.showQuickPick(items, options);
  return Promise.resolve(items).then(
    (list) =>
      new Promise<T | undefined>((resolve) => {
        const qp = vscode.window.createQuickPick<T>();
        qp.title = options.title;
        qp.placeholder = options.placeHolder;
        qp.matchOnDescription = options.matchOnDescription ?? false;
        qp.matchOnDetail = options.matchOnDetail ?? false;
        qp.ignoreFocusOut = options.ignoreFocusOut ?? false;
        qp.items = list;
        if (options.active) qp.activeItems = [options.active];
        let done = false;
        const finish = (v: T | undefined) => {
          if (done) return;
          done = true;
          resolve(v);
          qp.dispose();
        };
        qp.onDidChangeValue((v) => {
          if (!options.typed) return;
          const extra = v.trim() ? options.typed(v.trim()) : [];
          // alwaysShow: the typed path or repo id is offered even when no other item matches.
          qp.items = [...extra.map((i) => ({ ...i, alwaysShow: true })), ...list];
          if (extra.length) qp.activeItems = [qp.items[0]];
        });
        qp.onDidAccept(() => finish(qp.selectedItems[0] ?? qp.activeItems[0]));
        qp.onDidHide(() => finish(undefined));
        qp.show();
      }),
  );
}

export const ui = {
  showQuickPick: showQuickPick as typeof vscode.window.showQuickPick,
  showInputBox: vscode.window.showInputBox as typeof vscode.window.showInputBox,
  showOpenDialog: vscode.window.showOpenDialog as typeof vscode.window.showOpenDialog,
  showWarningMessage: vscode.window.showWarningMessage as typeof vscode.window.showWarningMessage,
};
export type Ui = typeof ui;
