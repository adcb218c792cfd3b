// What travels on the channels between the clocked units of the cycle engine.
#pragma once

#include <cstdint>
#include <vector>

namespace swpu {

class PassPlan;

// Controller -> DBL controller: run one tile of the pass plan the units were configured with.
struct TileCmd {
    int tile = 0;
};

// PE array -> controller: the tile's last result is in the output buffer.
struct TileDone {
    int tile = 0;
};

// A request to a global buffer: `accesses` consecutive words starting at bank `first_bank` (word i
// lives in bank (first_bank + i) mod banks). Kind Rmw reads the words and writes them back
// `rmw_delay` cycles later (the accumulate of a read-modify-write port).
struct BufRequest {
    enum Kind : uint8_t { Read, Write, Rmw };
    Kind kind = Read;
    int first_bank = 0;
    int accesses = 0;
    uint32_t tag = 0;
};

// A global buffer's answer: the data of a read (or the acknowledgement of a write) is in place.
struct BufResponse {
    uint32_t tag = 0;
};

// Decoupled groups (pe_array.group_sync = decoupled): one step of one group, at one of its own kept
// weights of a line.
struct GroupStep {
    uint64_t valid = 0;  // the group's operands at (line, s); WG: and the group's own output gradient
    int8_t s = 0;
    bool drop = false;   // DBL off: the weight was fetched, detected zero (or its window empty) and dropped
};

// Decoupled groups: one line of a window, read once and broadcast with the cluster's weights of the
// line into every group's operand FIFO. Each group's steps on it are a range of the tile's GroupStep
// table (the weights the group's own FIFO entry holds).
struct GroupLine {
    int32_t window = 0;
    int16_t line = 0;
    uint8_t flags = 0;          // StepCmd::LastOfWindow (FF/BP), StepCmd::LastOfTile
    int32_t act_words = 0;      // the line's read from the activation buffer (0: a window marker, no read)
    int32_t weight_words = 0;   // the cluster's weights of the line from the weight buffer (0: none)
    int32_t rmw_words = 0;      // WG: the groups' read-modify-writes of the line's gradient sums
    int32_t rmw_before = 0;     // WG: lines with read-modify-writes before this one in the tile
};

// The tile's lines in issue order, and every group's steps on each (written by the DBL controller when
// it takes a tile command; read by the per-group routers as the FIFO entries arrive).
struct GroupLineTable {
    int groups = 0;
    std::vector<GroupLine> lines;
    std::vector<uint32_t> offsets;  // [line][groups + 1]: group g's steps are steps[offsets[..g], offsets[..g+1])
    std::vector<GroupStep> steps;
    uint32_t first(size_t line, int g) const { return offsets[line * size_t(groups + 1) + size_t(g)]; }
    uint32_t end(size_t line, int g) const { return offsets[line * size_t(groups + 1) + size_t(g) + 1]; }
};

// DBL controller -> compaction network: one step (a weight word broadcast to the cluster's
// groups against one kernel position of one line of a window).
struct StepCmd {
    enum Kind : uint8_t { Normal, Drop, Marker, Line };  // Line: decoupled groups, one GroupLineTable entry
    // LastOfChannel: filter-oriented BP, the last step of an input channel with steps (the adder tree's sum).
    enum Flags : uint8_t { FirstOfLine = 1, LastOfLine = 2, LastOfWindow = 4, LastOfTile = 8, LastOfChannel = 16 };
    uint64_t valid = 0;   // the window's operand valid bits at this (line, s)
    uint64_t groups = 0;  // groups whose weight is kept at (line, s): the weight word's enables
    int32_t window = 0;
    int32_t entry = 0;    // Kind Line: the line's index in the tile's GroupLineTable
    int16_t line = 0;
    int8_t s = 0;
    Kind kind = Normal;
    uint8_t flags = 0;
};

// Compaction network -> PE array: the operands of one cycle of a step, packed onto the lanes.
struct LanePacket {
    uint64_t valid = 0;
    uint64_t groups = 0;
    int32_t window = 0;
    int16_t line = 0;
    int8_t s = 0;
    uint8_t cycle = 0;   // j: which of the step's cycles
    uint8_t cycles = 0;  // the step's cycles
    StepCmd::Kind kind = StepCmd::Normal;
    uint8_t flags = 0;   // StepCmd flags; LastOf* only on the step's last cycle
    uint32_t payload = 0;  // functional mode: the FP16 data the packet carries (CompactionNetwork::payload), 0 none
};

}  // namespace swpu
