// The HTML shell of both webviews: a strict Content-Security-Policy with a per-load nonce, local styles and one
// local script, nothing remote. Pure (no vscode import), so the Chromium render tests use exactly this page.
import { randomBytes } from 'node:crypto';

export interface WebviewPageOptions {
  /** `webview.cspSource`: the origin VS Code serves local resources from. */
  cspSource: string;
  /** webview URIs (as strings) of the stylesheets and the script bundle. */
  styles: string[];
  script: string;
  title: string;
  nonce?: string;
}

export function makeNonce(): string {
  return randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '');
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export function webviewPage(o: WebviewPageOptions): string {
  const nonce = o.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
${o.styles.map((s) => `<link rel="stylesheet" href="${escapeHtml(s)}">`).join('\n')}
<title>${escapeHtml(o.title)}</title>
</head>
<body>
<main id="root" data-state="loading"><p class="loading">Loading…</p></main>
<script nonce="${nonce}" src="${escapeHtml(o.script)}"></script>
</body>
</html>`;
}
