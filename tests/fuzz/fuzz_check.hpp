// Shared by the libFuzzer harnesses: an invariant that aborts (a finding) when broken, in every
// build (NDEBUG does not remove it), so the replay tests can fail too.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SWPU_FUZZ_CHECK(cond, what)                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, \
                         what);                                                              \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)
