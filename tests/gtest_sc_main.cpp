// Test entry point: libsystemc.so defines main() and calls sc_main, so every test binary runs
// GoogleTest from here.
#include <gtest/gtest.h>
#include <cstdlib>

#include <systemc>

int sc_main(int argc, char* argv[]) {
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 1);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
