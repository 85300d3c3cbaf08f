// Child process for the kill test: downloads a repo and prints one JSON progress line per update on stdout.
// Usage: node --import tsx download-child.ts <endpoint> <cacheDir> <repo>
import { downloadModel } from '../../../server/src/hub';

const [endpoint, cacheDir, repo] = process.argv.slice(2);
downloadModel(repo, {
  endpoint,
  cacheDir,
  token: '',
  retryDelayMs: 0,
  onProgress: (p) => process.stdout.write(`${JSON.stringify(p)}\n`),
}).then(
  (m) => process.stdout.write(`${JSON.stringify({ done: m.revision })}\n`),
  (e) => {
    process.stderr.write(`${e.code}: ${e.message}\n`);
    process.exitCode = 1;
  },
);
