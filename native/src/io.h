// DirectFile (io.cc): the NPZ writer's O_DIRECT output file, registered on the addon's exports.
#pragma once
#include <napi.h>

namespace apl {
void register_io(Napi::Env env, Napi::Object exports);
}
