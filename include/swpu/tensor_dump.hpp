// --dump-tensors: .npy files of what the datapath used and produced in functional mode, for chosen
// (iteration, layer, pass) triples, with a JSON manifest (docs/functional.md). The files go to a
// temporary directory next to the destination, which is renamed into place when the run succeeded:
// a failed run leaves nothing half-written.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "swpu/pass_plan.hpp"
#include "swpu/workload.hpp"

namespace swpu {

// Which (iteration, layer, pass) triples to dump; an empty list selects all.
struct DumpFilter {
    std::vector<int> iterations;     // positions in the trace's iteration list (0-based)
    std::vector<std::string> layers;  // weighted layer names
    std::vector<Pass> passes;
    bool wants(int iteration, const std::string& layer, Pass pass) const;
};

// Parses the comma-separated filter values of the command line against the trace that will run
// (`iterations` of them). Returns an empty string, or the reason the value is refused, naming the
// option and the value.
std::string parse_dump_filter(const std::string& iterations, const std::string& layers, const std::string& passes,
                              const Network& net, int trace_iterations, DumpFilter& out);

class TensorDump {
public:
    // Refuses (std::runtime_error) a destination that exists and is not an empty directory, or a
    // temporary directory that cannot be created.
    TensorDump(const std::string& dir, DumpFilter filter, nlohmann::json run);
    ~TensorDump();  // removes the temporary directory unless committed
    TensorDump(const TensorDump&) = delete;
    TensorDump& operator=(const TensorDump&) = delete;

    bool wants(int iteration, const std::string& layer, Pass pass) const { return m_filter.wants(iteration, layer, pass); }
    // Writes the operands and the result of one pass (the result fields of `v` this pass wrote).
    void record(int iteration, int step, const Layer& l, const LayerWork& work, Pass pass, int batch,
                const LayerValues& v);
    // Writes the manifest and renames the directory into place. Throws std::runtime_error.
    void commit();
    int entries() const { return int(m_entries.size()); }

private:
    std::string write(const std::string& rel, const std::string& descr, const std::vector<uint64_t>& shape,
                      const std::vector<uint8_t>& bytes);

    std::string m_dir, m_final, m_tmp;  // as given, absolute without a trailing separator, temporary
    DumpFilter m_filter;
    nlohmann::json m_run;
    nlohmann::json m_entries = nlohmann::json::array();
    bool m_committed = false;
};

}  // namespace swpu
