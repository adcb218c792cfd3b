// Test entry point: libsystemc.so defines main() and calls sc_main, so every test binary runs
// GoogleTest from here.
#include <gtest/gtest.h>
#include <systemc>

int sc_main(int argc, char* argv[]) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
