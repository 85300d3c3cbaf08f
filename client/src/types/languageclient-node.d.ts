// tsconfig's moduleResolution "node" ignores package "exports", so it cannot see the `./node` entry of
// vscode-languageclient; point the type checker at the file the export names (esbuild resolves the export itself).
declare module 'vscode-languageclient/node' {
  export * from 'vscode-languageclient/lib/node/main';
}
