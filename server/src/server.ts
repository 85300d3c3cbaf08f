// Language server entry (LSP wiring only). Filled in by the language-server work.
export {};
