// What the fuzz targets' shapes share: the strategy a mutant list allows, fixed ops.
#include <algorithm>

#include "fuzz/shapes.hpp"
#include "mmrace/mmr.hpp"
#include "mutants/catalogue.hpp"

namespace mmrace::fuzz {

namespace {
bool applies(const MutantInfo& m, Strategy s) {
    std::string list = std::string(",") + m.strategies + ",";
    return list == ",all," || list.find(std::string(",") + strategy_name(s) + ",") != std::string::npos;
}
}  // namespace

std::vector<Strategy> strategies_for(const std::vector<std::string>& mutants) {
    std::vector<Strategy> out;
    for (Strategy s : {Strategy::classic, Strategy::spf, Strategy::pervma}) {
        bool all = std::all_of(mutants.begin(), mutants.end(), [&](const std::string& name) {
            const MutantInfo* m = find_mutant(name);
            return m && applies(*m, s);
        });
        if (all) out.push_back(s);
    }
    return out;
}

// The strategy is coded among all the target draws, whatever the mutants, so that an
// input means the same program with and without them; one a mutant does not apply to
// falls back to the first one it does.
void code_strategy(Coder& c, Config& config, const std::vector<Strategy>& draws, const Options& o) {
    auto at = std::find(draws.begin(), draws.end(), config.strategy);
    if (!c.decoding() && at == draws.end())
        c.reject(std::string("config strategy=") + strategy_name(config.strategy) + ": not a strategy this target draws");
    uint64_t i = static_cast<uint64_t>(at - draws.begin());
    c.num(i, draws.size(), "config strategy=");
    Strategy s = draws[i];
    std::vector<Strategy> allowed = strategies_for(o.mutants);
    if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
        if (!c.decoding())
            c.reject(std::string("config strategy=") + strategy_name(s) + ": the mutants do not apply to it");
        if (!allowed.empty()) s = allowed.front();
    }
    config.strategy = s;
    config.mutants = o.mutants;
}

void fixed_op(Coder& c, const Program& p, std::vector<Op>& ops, size_t i, const Op& want,
              const std::string& where) {
    if (c.decoding()) {
        ops.insert(ops.begin() + static_cast<long>(std::min(i, ops.size())), want);
        return;
    }
    if (i >= ops.size() || !(ops[i] == want)) {
        c.reject(where + " op " + std::to_string(i) + " must be `" + print_op(p, want) + "` in this target");
    }
}

}  // namespace mmrace::fuzz
