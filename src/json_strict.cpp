// Duplicate-key detection through nlohmann::json's parser callback (include/swpu/json_strict.hpp).
#include "swpu/json_strict.hpp"

#include <set>
#include <vector>

namespace swpu {

std::string DuplicateKeyError::message() const {
    return "duplicate key '" + key + "' " + (path.empty() ? std::string("at the top level") : "in '" + path + "'");
}

namespace {

// One open object or array of the document being parsed.
struct Frame {
    bool object = true;
    std::string path;          // path of this container
    std::set<std::string> keys;  // keys seen so far (objects)
    std::string key;           // the key whose value is being parsed (objects)
    size_t index = 0;          // position of the next element (arrays)
};

std::string child_path(const Frame& f) {
    if (f.object) return f.path.empty() ? f.key : f.path + "." + f.key;
    return f.path + "[" + std::to_string(f.index) + "]";
}

}  // namespace

nlohmann::json parse_json_strict(const std::string& text, bool ignore_comments) {
    using json = nlohmann::json;
    std::vector<Frame> stack;
    auto value_done = [&]() {
        if (!stack.empty() && !stack.back().object) ++stack.back().index;
    };
    json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
        switch (event) {
            case json::parse_event_t::object_start:
            case json::parse_event_t::array_start: {
                Frame f;
                f.object = event == json::parse_event_t::object_start;
                f.path = stack.empty() ? std::string() : child_path(stack.back());
                stack.push_back(std::move(f));
                break;
            }
            case json::parse_event_t::key: {
                Frame& f = stack.back();
                f.key = parsed.get<std::string>();
                if (!f.keys.insert(f.key).second) throw DuplicateKeyError{f.path, f.key};
                break;
            }
            case json::parse_event_t::object_end:
            case json::parse_event_t::array_end:
                stack.pop_back();
                value_done();
                break;
            case json::parse_event_t::value:
                value_done();
                break;
        }
        return true;
    };
    return json::parse(text, cb, /*allow_exceptions=*/true, ignore_comments);
}

}  // namespace swpu
