// The language server as `apl-quant lsp --stdio` starts it (startServer over stdio), plus one request for the load
// driver only: `aplFuzz/heap` answers the heap in use after a full garbage collection (run with --expose-gc), and
// `aplFuzz/slices` the number of slices of parsing and validation run so far and the longest (ms, wall).
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { sliceStats } from '../../../server/src/lsp/slices';
import { startServer } from '../../../server/src/server';

const connection = startServer(createConnection(ProposedFeatures.all));
connection.onRequest('aplFuzz/heap', () => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
});
connection.onRequest('aplFuzz/slices', () => sliceStats);
