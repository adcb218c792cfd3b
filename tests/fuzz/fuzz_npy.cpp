// libFuzzer harness: the .npy readers (npy::parse_bytes, the parser behind npy::read_bytes, and
// npy::parse_array, behind the N-D tensors of a version 2 trace) on the bytes of a file.
// Invariants: a refusal has a reason; an accepted array has the announced length, a known dtype
// and (bool) only 0/1 bytes; an accepted N-D array holds prod(shape) x item size bytes; and
// re-serialising either reads back the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "swpu/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> file(data, data + size);
    std::string err;
    swpu::npy::Array nd;
    if (!swpu::npy::parse_array(file, nd, err, /*max_bytes=*/uint64_t(1) << 20)) {
        SWPU_FUZZ_CHECK(!err.empty(), "an N-D refusal has a reason");
    } else {
        uint64_t count = 1;
        for (uint64_t d : nd.shape) count *= d;
        SWPU_FUZZ_CHECK(swpu::npy::item_size(nd.descr) > 0, "known N-D dtype");
        SWPU_FUZZ_CHECK(nd.data.size() == count * uint64_t(swpu::npy::item_size(nd.descr)), "data fills the shape");
        swpu::npy::Array back;
        SWPU_FUZZ_CHECK(swpu::npy::parse_array(swpu::npy::serialize_array(nd.descr, nd.shape, nd.data), back, err),
                        "a serialised N-D array reads back");
        SWPU_FUZZ_CHECK(back.data == nd.data && back.shape == nd.shape && back.descr == nd.descr,
                        "N-D round trip is exact");
    }
    err.clear();
    swpu::npy::ByteArray a;
    if (!swpu::npy::parse_bytes(file, a, err, /*max_bytes=*/uint64_t(1) << 20)) {
        SWPU_FUZZ_CHECK(!err.empty(), "a refusal has a reason");
        return 0;
    }
    SWPU_FUZZ_CHECK(a.data.size() == a.length, "data holds the announced length");
    SWPU_FUZZ_CHECK(a.descr == "|u1" || a.descr == "<u1" || a.descr == "|b1", "known dtype");
    if (a.is_bool)
        for (uint8_t b : a.data) SWPU_FUZZ_CHECK(b <= 1, "bool bytes are 0 or 1");
    swpu::npy::ByteArray back;
    SWPU_FUZZ_CHECK(swpu::npy::parse_bytes(swpu::npy::serialize_bytes(a.data, a.descr), back, err),
                    "a serialised array reads back");
    SWPU_FUZZ_CHECK(back.data == a.data && back.descr == a.descr, "round trip is exact");
    return 0;
}
