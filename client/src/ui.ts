// The prompts the commands use, behind one object so the real-VS-Code tests can answer them (AplApi.testing.ui)
// while everything else stays the real VS Code UI.
import * as vscode from 'vscode';

export const ui = {
  showQuickPick: vscode.window.showQuickPick as typeof vscode.window.showQuickPick,
  showInputBox: vscode.window.showInputBox as typeof vscode.window.showInputBox,
  showOpenDialog: vscode.window.showOpenDialog as typeof vscode.window.showOpenDialog,
  showWarningMessage: vscode.window.showWarningMessage as typeof vscode.window.showWarningMessage,
};
export type Ui = typeof ui;
