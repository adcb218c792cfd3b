// What travels on the channels between the clocked units of the cycle engine.
#pragma once

#include <cstdint>

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

// DBL controller -> compaction network: one step (a weight word broadcast to the cluster's
// groups against one kernel position of one line of a window).
struct StepCmd {
    enum Kind : uint8_t { Normal, Drop, Marker };
    enum Flags : uint8_t { FirstOfLine = 1, LastOfLine = 2, LastOfWindow = 4, LastOfTile = 8 };
    uint64_t valid = 0;   // the window's operand valid bits at this (line, s)
    uint64_t groups = 0;  // groups whose weight is kept at (line, s): the weight word's enables
    int32_t window = 0;
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
