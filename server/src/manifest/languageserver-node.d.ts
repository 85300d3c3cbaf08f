// tsconfig's moduleResolution "node" ignores package "exports", so it cannot see the `./node` entries of
// vscode-languageserver, vscode-languageserver-protocol and vscode-jsonrpc; point the type checker at the files the
// exports name (esbuild and node resolve the exports themselves at build and run time).
declare module 'vscode-languageserver/node' {
  export * from 'vscode-languageserver/lib/node/main';
}
declare module 'vscode-languageserver-protocol/node' {
  export * from 'vscode-languageserver-protocol/lib/node/main';
}
declare module 'vscode-jsonrpc/node' {
  export * from 'vscode-jsonrpc/lib/node/main';
}
