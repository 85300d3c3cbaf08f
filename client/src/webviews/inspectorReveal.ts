// "Show this member in the inspector": go to definition on a member name in a manifest opens the archive and, through
// this, selects the member there. The inspector editor registers the handler; the language client calls it.
import type * as vscode from 'vscode';

let handler: ((file: vscode.Uri, member: string) => void) | undefined;

export function setMemberRevealer(h: typeof handler): void {
  handler = h;
}

/** Selects `member` in the inspector of `file` (now, if one is open, else as soon as one opens). */
export function revealMember(file: vscode.Uri, member: string): void {
  handler?.(file, member);
}
