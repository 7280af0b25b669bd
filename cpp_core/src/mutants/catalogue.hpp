// The catalogue of injectable historical bugs (DESIGN §8): the tool's ground truth.
//
// A row exists as soon as the bug is on the target list, so that `config mutants=...`
// can name it; `built` says whether the core can switch it on yet.
#pragma once

#include <string_view>
#include <vector>

namespace mmrace {

struct MutantInfo {
    const char* name;        // the name used in `config mutants=...`
    const char* reference;   // upstream commit, CVE, or the seed review it comes from
    const char* seed;        // the seed(s) the §8 table names ("000".."004"), else "-"
    const char* strategies;  // "all", or a comma list of the strategies it applies to
    const char* check;       // the check expected to catch it: uaf, lock_order, semantic, invariant
    const char* summary;     // what goes wrong
    bool built;              // the core implements the switch
};

// Every row of DESIGN §8, in its order.
const std::vector<MutantInfo>& mutant_catalogue();

// The row named `name`, or nullptr.
const MutantInfo* find_mutant(std::string_view name);

}  // namespace mmrace
