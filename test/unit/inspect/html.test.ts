import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contentSecurityPolicy, makeNonce, webviewPage } from '../../../client/src/webviews/html';

test('the webview page has a strict CSP with a fresh nonce and only local resources', () => {
  const a = makeNonce();
  const b = makeNonce();
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9]{16,}$/);
  const csp = contentSecurityPolicy('https://x.vscode-cdn.net', 'N0NCE');
  assert.match(csp, /^default-src 'none'/);
  assert.match(csp, /script-src 'nonce-N0NCE'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  const html = webviewPage({
    cspSource: 'https://x.vscode-cdn.net',
    styles: ['https://x.vscode-cdn.net/media/base.css'],
    script: 'https://x.vscode-cdn.net/dist/webview/report.js',
    title: '<Report & "x">',
    nonce: 'N0NCE',
  });
  assert.match(html, /<script nonce="N0NCE" src="https:\/\/x\.vscode-cdn\.net\/dist\/webview\/report\.js"><\/script>/);
  assert.match(html, /<title>&lt;Report &amp; &quot;x&quot;&gt;<\/title>/);
  assert.equal((html.match(/<script/g) ?? []).length, 1, 'one script, no inline code');
  assert.doesNotMatch(html, /style="/);
});
