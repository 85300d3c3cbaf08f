// The TinyLlama shape the inference benches share (hidden 2048, intermediate 5632, 32 heads, 4 KV heads of 64,
// vocabulary 32000), and the float16 bits of a float the synthetic weights' scales and zero points use.
import type { ModelConfig } from '../native/forward-types';

export function tinyLlamaConfig(layers: number): ModelConfig {
  return {
    family: 'llama',
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: layers,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 64,
    vocabSize: 32000,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    hiddenAct: 'silu',
    embedScale: false,
    normAddOne: false,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 2048,
  };
}

/** float16 bits of v (truncating; normal values only, as the benches' scales and zero points are). */
export function f16Bits(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  return ((u >>> 16) & 0x8000) | ((((u >>> 23) & 0xff) - 112) << 10) | ((u >>> 13) & 0x3ff);
}
