// Names the extension's parts share (commands, tasks, activation): plain data, no `vscode` import.

/** The name of the extension's output channel. */
export const OUTPUT_CHANNEL = 'APL Quantizer';
/** The SecretStorage key of the Hugging Face token. */
export const HF_TOKEN_SECRET = 'apl.huggingFaceToken';
/** The task type of conversions (contributed in package.json taskDefinitions). */
export const CONVERT_TASK_TYPE = 'apl-convert';
