// Minimal .npy reader/writer for 1-D byte arrays (see include/swpu/npy.hpp).
#include "swpu/npy.hpp"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <system_error>
#include <filesystem>

namespace swpu {
namespace npy {
namespace {

const char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

// A value of the header dictionary: a string, a boolean or a tuple of integers.
struct PyValue {
    enum Kind { Str, Bool, Tuple } kind = Str;
    std::string s;
    bool b = false;
    std::vector<uint64_t> tuple;
};

// Parser of the Python literal NumPy writes as the header: {'descr': '|u1', 'fortran_order':
// False, 'shape': (12,), }. Only what NumPy produces is accepted.
class HeaderParser {
public:
    explicit HeaderParser(const std::string& text) : t_(text) {}

    bool parse(std::map<std::string, PyValue>& out, std::string& err) {
        skip_ws();
        if (!eat('{')) return fail(err, "header is not a Python dict (no '{')");
        for (;;) {
            skip_ws();
            if (eat('}')) break;
            std::string key;
            if (!parse_string(key)) return fail(err, "header dict: expected a quoted key");
            skip_ws();
            if (!eat(':')) return fail(err, "header dict: expected ':' after key '" + key + "'");
            skip_ws();
            PyValue v;
            if (!parse_value(v)) return fail(err, "header dict: bad value for key '" + key + "'");
            if (out.count(key)) return fail(err, "header dict: duplicate key '" + key + "'");
            out[key] = v;
            skip_ws();
            if (eat(',')) continue;
            skip_ws();
            if (eat('}')) break;
            return fail(err, "header dict: expected ',' or '}'");
        }
        skip_ws();
        if (i_ != t_.size()) return fail(err, "header: trailing characters after the dict");
        return true;
    }

private:
    bool fail(std::string& err, const std::string& why) {
        err = why;
        return false;
    }
    void skip_ws() {
        while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        if (i_ < t_.size() && t_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    bool parse_string(std::string& s) {
        if (i_ >= t_.size() || (t_[i_] != '\'' && t_[i_] != '"')) return false;
        char q = t_[i_++];
        s.clear();
        while (i_ < t_.size() && t_[i_] != q) {
            if (t_[i_] == '\\') return false;  // NumPy never writes escapes in these fields
            s.push_back(t_[i_++]);
        }
        return eat(q);
    }
    bool parse_value(PyValue& v) {
        if (i_ < t_.size() && (t_[i_] == '\'' || t_[i_] == '"')) {
            v.kind = PyValue::Str;
            return parse_string(v.s);
        }
        if (t_.compare(i_, 4, "True") == 0) {
            i_ += 4;
            v.kind = PyValue::Bool;
            v.b = true;
            return true;
        }
        if (t_.compare(i_, 5, "False") == 0) {
            i_ += 5;
            v.kind = PyValue::Bool;
            v.b = false;
            return true;
        }
        if (eat('(')) {
            v.kind = PyValue::Tuple;
            for (;;) {
                skip_ws();
                if (eat(')')) return true;
                if (i_ >= t_.size() || !std::isdigit(static_cast<unsigned char>(t_[i_]))) return false;
                uint64_t n = 0;
                while (i_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[i_]))) {
                    uint64_t d = uint64_t(t_[i_] - '0');
                    if (n > (UINT64_MAX - d) / 10) return false;  // overflow
                    n = n * 10 + d;
                    ++i_;
                }
                if (i_ < t_.size() && t_[i_] == 'L') ++i_;  // Python 2 long suffix
                v.tuple.push_back(n);
                skip_ws();
                if (eat(',')) continue;
                skip_ws();
                if (eat(')')) return true;
                return false;
            }
        }
        return false;
    }

    const std::string& t_;
    size_t i_ = 0;
};

std::string to_str(uint64_t v) { return std::to_string(v); }

}  // namespace

// The preamble and header of an .npy image: version, where the data starts, the header dict.
static bool parse_preamble(const std::vector<uint8_t>& f, int& major, int& minor, uint64_t& data_at,
                           std::map<std::string, PyValue>& dict, std::string& err) {
    if (f.size() < 10) {
        err = "not a .npy file: " + to_str(f.size()) + " bytes, shorter than the .npy preamble";
        return false;
    }
    for (int i = 0; i < 6; ++i) {
        if (char(f[i]) != kMagic[i]) {
            err = "not a .npy file: bad magic (expected \\x93NUMPY)";
            return false;
        }
    }
    major = f[6];
    minor = f[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
        err = "unsupported .npy format version " + std::to_string(major) + "." +
              std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)";
        return false;
    }
    uint64_t header_len = 0, pre = 0;
    if (major == 1) {
        header_len = uint64_t(f[8]) | (uint64_t(f[9]) << 8);
        pre = 10;
    } else {
        if (f.size() < 12) {
            err = "truncated .npy file: the header length field is cut off";
            return false;
        }
        header_len = uint64_t(f[8]) | (uint64_t(f[9]) << 8) | (uint64_t(f[10]) << 16) | (uint64_t(f[11]) << 24);
        pre = 12;
    }
    if (pre + header_len > f.size()) {
        err = "truncated .npy file: header of " + to_str(header_len) + " bytes but the file has " +
              to_str(f.size()) + " bytes";
        return false;
    }
    std::string header(f.begin() + long(pre), f.begin() + long(pre + header_len));
    for (char c : header) {
        if (c == '\0') {
            err = "corrupted .npy header: NUL byte in the header";
            return false;
        }
    }
    std::string perr;
    HeaderParser parser(header);
    if (!parser.parse(dict, perr)) {
        err = "corrupted .npy header: " + perr;
        return false;
    }
    for (const char* key : {"descr", "fortran_order", "shape"}) {
        if (!dict.count(key)) {
            err = std::string("corrupted .npy header: no '") + key + "' key";
            return false;
        }
    }
    if (dict.size() != 3) {
        err = "corrupted .npy header: unexpected keys (expected exactly descr, fortran_order, shape)";
        return false;
    }
    data_at = pre + header_len;
    return true;
}

bool parse_bytes(const std::vector<uint8_t>& f, ByteArray& out, std::string& err, uint64_t max_bytes) {
    out = ByteArray{};
    std::map<std::string, PyValue> dict;
    uint64_t data_at = 0;
    if (!parse_preamble(f, out.major, out.minor, data_at, dict, err)) return false;
    const PyValue& descr = dict["descr"];
    if (descr.kind != PyValue::Str) {
        err = "corrupted .npy header: 'descr' is not a string";
        return false;
    }
    if (descr.s != "|u1" && descr.s != "<u1" && descr.s != "|b1") {
        err = "wrong dtype '" + descr.s + "': expected uint8 ('|u1') or bool ('|b1')";
        return false;
    }
    out.descr = descr.s;
    out.is_bool = descr.s == "|b1";
    const PyValue& fo = dict["fortran_order"];
    if (fo.kind != PyValue::Bool) {
        err = "corrupted .npy header: 'fortran_order' is not True/False";
        return false;
    }
    if (fo.b) {
        err = "fortran_order True is not supported (write a C-order 1-D array)";
        return false;
    }
    const PyValue& shape = dict["shape"];
    if (shape.kind != PyValue::Tuple) {
        err = "corrupted .npy header: 'shape' is not a tuple";
        return false;
    }
    if (shape.tuple.size() != 1) {
        std::string s = "(";
        for (size_t i = 0; i < shape.tuple.size(); ++i) s += (i ? ", " : "") + to_str(shape.tuple[i]);
        s += shape.tuple.size() == 1 ? ",)" : ")";
        err = "array of shape " + s + " is not 1-D: expected shape (n,)";
        return false;
    }
    out.length = shape.tuple[0];
    const uint64_t have = f.size() - data_at;
    if (have < out.length) {
        err = "truncated .npy file: header announces " + to_str(out.length) + " bytes of data, the file holds " +
              to_str(have);
        return false;
    }
    if (out.length > max_bytes) {
        err = "array of " + to_str(out.length) + " bytes exceeds the limit of " + to_str(max_bytes) + " bytes";
        return false;
    }
    if (have > out.length) {
        err = "corrupted .npy file: " + to_str(have - out.length) + " bytes after the " + to_str(out.length) +
              " announced data bytes";
        return false;
    }
    out.data.assign(f.begin() + long(data_at), f.end());
    if (out.is_bool) {
        for (uint64_t i = 0; i < out.length; ++i) {
            if (out.data[i] > 1) {
                err = "corrupted bool array: byte " + to_str(i) + " is " + std::to_string(out.data[i]) +
                      " (bool values are 0 or 1)";
                return false;
            }
        }
    }
    return true;
}

// Reads a whole file of at most max_bytes of data plus a header.
static bool read_file(const std::string& path, std::vector<uint8_t>& buf, std::string& err, uint64_t max_bytes) {
    std::error_code ec;
    namespace fs = std::filesystem;
    fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) {
        err = "file not found";
        return false;
    }
    if (!fs::is_regular_file(st)) {
        err = "not a regular file";
        return false;
    }
    uint64_t size = fs::file_size(path, ec);
    if (ec) {
        err = "cannot stat the file: " + ec.message();
        return false;
    }
    // The data can never exceed max_bytes; leave room for a header of up to 4 GiB only in theory:
    // NumPy headers are small, so anything larger than max_bytes + 1 MiB is refused up front.
    const uint64_t limit = max_bytes + (uint64_t(1) << 20);
    if (size > limit) {
        err = "file of " + to_str(size) + " bytes exceeds the limit of " + to_str(limit) + " bytes";
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        err = "cannot open the file";
        return false;
    }
    buf.resize(size);
    if (size > 0 && !in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(size))) {
        err = "read error";
        return false;
    }
    return true;
}

bool read_bytes(const std::string& path, ByteArray& out, std::string& err, uint64_t max_bytes) {
    std::vector<uint8_t> buf;
    if (!read_file(path, buf, err, max_bytes)) return false;
    return parse_bytes(buf, out, err, max_bytes);
}

std::vector<uint8_t> serialize_bytes(const std::vector<uint8_t>& data, const std::string& descr) {
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" +
                         std::to_string(data.size()) + ",), }";
    // Pad with spaces so that preamble + header (ending in '\n') is a multiple of 64 bytes.
    size_t total = 10 + header.size() + 1;
    size_t pad = (64 - total % 64) % 64;
    header += std::string(pad, ' ');
    header += '\n';
    std::vector<uint8_t> f;
    f.reserve(10 + header.size() + data.size());
    for (char c : kMagic) f.push_back(uint8_t(c));
    f.push_back(1);
    f.push_back(0);
    f.push_back(uint8_t(header.size() & 0xff));
    f.push_back(uint8_t((header.size() >> 8) & 0xff));
    f.insert(f.end(), header.begin(), header.end());
    f.insert(f.end(), data.begin(), data.end());
    return f;
}

bool write_bytes(const std::string& path, const std::vector<uint8_t>& data, std::string& err,
                 const std::string& descr) {
    std::vector<uint8_t> f = serialize_bytes(data, descr);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) {
        err = "cannot open '" + path + "' for writing";
        return false;
    }
    out.write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
    if (!out) {
        err = "write error on '" + path + "'";
        return false;
    }
    return true;
}

std::vector<uint8_t> pack_bits(const std::vector<uint8_t>& bits) {
    std::vector<uint8_t> p((bits.size() + 7) / 8, 0);
    for (size_t i = 0; i < bits.size(); ++i)
        if (bits[i]) p[i >> 3] |= uint8_t(0x80u >> (i & 7));
    return p;
}

std::vector<uint8_t> unpack_bits(const std::vector<uint8_t>& packed, uint64_t count) {
    std::vector<uint8_t> b(count);
    for (uint64_t i = 0; i < count; ++i) b[i] = (packed[i >> 3] >> (7 - (i & 7))) & 1u;
    return b;
}

int item_size(const std::string& descr) {
    if (descr == "|u1" || descr == "<u1" || descr == "|b1") return 1;
    if (descr == "<f2") return 2;
    if (descr == "<f4") return 4;
    return 0;
}

bool parse_array(const std::vector<uint8_t>& f, Array& out, std::string& err, uint64_t max_bytes) {
    out = Array{};
    std::map<std::string, PyValue> dict;
    uint64_t data_at = 0;
    int major = 1, minor = 0;
    if (!parse_preamble(f, major, minor, data_at, dict, err)) return false;
    const PyValue& descr = dict["descr"];
    if (descr.kind != PyValue::Str) {
        err = "corrupted .npy header: 'descr' is not a string";
        return false;
    }
    const int isz = item_size(descr.s);
    if (isz == 0) {
        err = "unsupported dtype '" + descr.s + "' (supported: '<f2' float16, '<f4' float32, '|u1' uint8, '|b1' bool)";
        return false;
    }
    out.descr = descr.s;
    const PyValue& fo = dict["fortran_order"];
    if (fo.kind != PyValue::Bool) {
        err = "corrupted .npy header: 'fortran_order' is not True/False";
        return false;
    }
    if (fo.b) {
        err = "fortran_order True is not supported (write a C-order array)";
        return false;
    }
    const PyValue& shape = dict["shape"];
    if (shape.kind != PyValue::Tuple) {
        err = "corrupted .npy header: 'shape' is not a tuple";
        return false;
    }
    out.shape = shape.tuple;
    uint64_t count = 1;
    for (uint64_t d : out.shape) {
        if (d != 0 && count > max_bytes / d) {
            err = "array shape exceeds the limit of " + to_str(max_bytes) + " bytes";
            return false;
        }
        count *= d;
    }
    if (count > max_bytes / uint64_t(isz)) {
        err = "array of " + to_str(count) + " elements exceeds the limit of " + to_str(max_bytes) + " bytes";
        return false;
    }
    const uint64_t need = count * uint64_t(isz), have = f.size() - data_at;
    if (have != need) {
        err = (have < need ? "truncated .npy file: " : "corrupted .npy file: ") + std::string("the shape needs ") +
              to_str(need) + " data bytes, the file holds " + to_str(have);
        return false;
    }
    out.data.assign(f.begin() + long(data_at), f.end());
    return true;
}

bool read_array(const std::string& path, Array& out, std::string& err, uint64_t max_bytes) {
    std::vector<uint8_t> buf;
    if (!read_file(path, buf, err, max_bytes)) return false;
    return parse_array(buf, out, err, max_bytes);
}

std::vector<uint8_t> serialize_array(const std::string& descr, const std::vector<uint64_t>& shape,
                                     const std::vector<uint8_t>& data) {
    std::string dims;
    for (uint64_t d : shape) dims += std::to_string(d) + ", ";
    if (shape.size() > 1) dims.resize(dims.size() - 2);  // (n,) for one dimension, (a, b) otherwise
    else if (shape.size() == 1) dims.resize(dims.size() - 1);
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    const size_t total = 10 + header.size() + 1;
    header += std::string((64 - total % 64) % 64, ' ');
    header += '\n';
    std::vector<uint8_t> f;
    f.reserve(10 + header.size() + data.size());
    for (char c : kMagic) f.push_back(uint8_t(c));
    f.push_back(1);
    f.push_back(0);
    f.push_back(uint8_t(header.size() & 0xff));
    f.push_back(uint8_t((header.size() >> 8) & 0xff));
    f.insert(f.end(), header.begin(), header.end());
    f.insert(f.end(), data.begin(), data.end());
    return f;
}

bool write_array(const std::string& path, const std::string& descr, const std::vector<uint64_t>& shape,
                 const std::vector<uint8_t>& data, std::string& err) {
    const std::vector<uint8_t> f = serialize_array(descr, shape, data);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) {
        err = "cannot open '" + path + "' for writing";
        return false;
    }
    out.write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size()));
    if (!out) {
        err = "write error on '" + path + "'";
        return false;
    }
    return true;
}

}  // namespace npy
}  // namespace swpu
