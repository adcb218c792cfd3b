// JSON parsing that refuses a duplicated key in any object (nlohmann::json keeps the last value
// without a word): the config loader and the trace loader parse through it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace swpu {

// A key given twice in one object. `path` is the enclosing object's path (e.g. "chip" or
// "iterations[0].layers"; empty for the top level), `key` the duplicated key.
struct DuplicateKeyError {
    std::string path, key;
    std::string message() const;  // "duplicate key 'key' in 'path'" (or "at the top level")
};

// nlohmann::json::parse(text, ..., ignore_comments) plus the duplicate check. Throws
// nlohmann::json::parse_error (syntax), nlohmann::json::out_of_range (a number too large for a
// double) or DuplicateKeyError.
nlohmann::json parse_json_strict(const std::string& text, bool ignore_comments = false);

}  // namespace swpu
