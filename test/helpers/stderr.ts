// What a synchronous call writes to process.stderr (restored afterwards, also when it throws).
export function captureStderr<T>(f: () => T): { value: T; err: string } {
  const orig = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => {
    err += String(s);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: f(), err };
  } finally {
    process.stderr.write = orig;
  }
}
