// The @vscode-elements/elements components the webviews use (bundled by esbuild; each registers its custom element).
// They style themselves from VS Code's theme variables and carry their styles as constructable stylesheets, which
// the strict CSP allows.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
