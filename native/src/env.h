// The environment switches that choose kernels (APL_FORCE_SCALAR=1, APL_NO_AVX512=1, APL_NO_FMA=1,
// APL_WIDE_DEC=0, …): one reading of "set to 1" and of "not set to 0" for every selector.
#pragma once

#include <cstdlib>
#include <cstring>

namespace apl {

/** True when `name` is set to exactly "1" (the APL_FORCE_* and APL_NO_* switches, off by default). */
inline bool env_is_1(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "1") == 0;
}

/** False only when `name` is set to exactly "0" (switches that are on by default). */
inline bool env_not_0(const char* name) {
  const char* v = std::getenv(name);
  return !(v && std::strcmp(v, "0") == 0);
}

}  // namespace apl
