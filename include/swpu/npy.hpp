// Minimal reader and writer of NumPy .npy files: 1-D byte arrays (dtype uint8 or bool), the
// container of the bit-packed masks and bitmaps of a trace (docs/trace-format.md), and N-D float16,
// float32 and uint8 arrays (the tensors of a version 2 trace and of a tensor dump).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swpu {
namespace npy {

struct ByteArray {
    int major = 1, minor = 0;   // format version of the file (1.0, 2.0 or 3.0)
    std::string descr;          // "|u1", "<u1" or "|b1"
    bool is_bool = false;       // descr "|b1"
    uint64_t length = 0;        // shape (length,)
    std::vector<uint8_t> data;  // length bytes
};

// Reads `path`. Accepts versions 1.0, 2.0 and 3.0, descr '|u1', '<u1' or '|b1', fortran_order
// False and a 1-D shape (n,). Never allocates more than max_bytes for the data: a header that
// claims more fails. Returns false with a human-readable reason in `error` (no exception is
// thrown for any content of the file; std::bad_alloc can only come from a genuinely full heap).
bool read_bytes(const std::string& path, ByteArray& out, std::string& error,
                uint64_t max_bytes = (uint64_t(1) << 32));

// Parses an in-memory .npy image (same rules as read_bytes).
bool parse_bytes(const std::vector<uint8_t>& file, ByteArray& out, std::string& error,
                 uint64_t max_bytes = (uint64_t(1) << 32));

// Serialises a 1-D byte array as a version 1.0 .npy image (header padded to 64 bytes, as NumPy).
std::vector<uint8_t> serialize_bytes(const std::vector<uint8_t>& data, const std::string& descr = "|u1");

// Writes serialize_bytes(data, descr) to path. Returns false with a reason on I/O failure.
bool write_bytes(const std::string& path, const std::vector<uint8_t>& data, std::string& error,
                 const std::string& descr = "|u1");

// np.packbits / np.unpackbits with the default big bit order: element i is bit (7 - i % 8) of
// byte i / 8. `bits` holds one 0/1 value per element.
std::vector<uint8_t> pack_bits(const std::vector<uint8_t>& bits);
// Unpacks `count` elements; requires packed.size() >= ceil(count / 8).
std::vector<uint8_t> unpack_bits(const std::vector<uint8_t>& packed, uint64_t count);

// An N-D array (C order, little-endian) of one of the dtypes swpu-sim reads and writes: '<f2'
// (float16: tensors of a trace and of a dump), '<f4' (float32), '|u1'/'<u1' (uint8), '|b1' (bool).
struct Array {
    std::string descr;
    std::vector<uint64_t> shape;
    std::vector<uint8_t> data;  // prod(shape) * item size bytes, as in the file
};
int item_size(const std::string& descr);  // 0 for a dtype not listed above
// Same failure rules as read_bytes; the data size must match the shape exactly.
bool parse_array(const std::vector<uint8_t>& file, Array& out, std::string& error,
                 uint64_t max_bytes = (uint64_t(1) << 32));
bool read_array(const std::string& path, Array& out, std::string& error, uint64_t max_bytes = (uint64_t(1) << 32));
std::vector<uint8_t> serialize_array(const std::string& descr, const std::vector<uint64_t>& shape,
                                     const std::vector<uint8_t>& data);
bool write_array(const std::string& path, const std::string& descr, const std::vector<uint64_t>& shape,
                 const std::vector<uint8_t>& data, std::string& error);

}  // namespace npy
}  // namespace swpu
