// N-API bindings of the inference engine (infer/), registered from addon.cc's Init.
#pragma once
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <napi.h>

namespace apl {
/** Adds inferInfo, inferLinear and InferModel to exports. */
void register_infer(Napi::Env env, Napi::Object exports);
}  // namespace apl
