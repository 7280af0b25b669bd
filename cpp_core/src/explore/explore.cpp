// The explore loop (include/mmrace/explore.hpp): seeds, schedule families, limits,
// failures and progress.
#include "mmrace/explore.hpp"

#include <chrono>
#include <stdexcept>

#include "explore/pct_bound.hpp"
#include "mmrace/mmr.hpp"

namespace mmrace {
namespace {

using Clock = std::chrono::steady_clock;

void check_options(const ExploreOptions& o) {
    for (Schedule::Kind k : o.policies)
        if (k == Schedule::Kind::replay)
            throw std::invalid_argument(
                "explore: `replay` is not a schedule family; pass replay lists in ExploreOptions::replays");
        else if (k == Schedule::Kind::preempt)
            throw std::invalid_argument("explore: `preempt` is not a schedule family");
    if (o.policies.empty() && o.replays.empty())
        throw std::invalid_argument("explore: no schedule family and no replay list to run");
    if (o.max_seconds < 0) throw std::invalid_argument("explore: max_seconds is negative");
}

// One exploration: the state explore() keeps from run to run.
class Explorer {
public:
    // `fixed`: the one program of every seed (source unused), or null.
    Explorer(const ProgramSource& source, const Program* fixed, const ExploreOptions& o)
        : source_(source), fixed_(fixed), o_(o), bound_(o.pct_steps), t0_(Clock::now()), next_progress_(t0_) {
        run_opt_ = o.run;
        run_opt_.interrupted = nullptr;
        if (o.interrupted) run_opt_.interrupted = [this] { return user_interrupted(); };
    }

    ExploreResult go() {
        if (!o_.replays.empty()) {
            const Program& p = program(o_.first_seed);
            for (const auto& list : o_.replays) {
                Schedule s;
                s.replay = list;
                if (!one(o_.first_seed, p, s)) return finish();
            }
        }
        for (uint64_t seed = o_.first_seed; !o_.policies.empty(); ++seed) {
            if (out_.runs >= o_.max_runs) return finish();
            const Program& p = program(seed);
            for (Schedule::Kind kind : o_.policies)
                if (!one(seed, p, schedule(kind, seed))) return finish();
        }
        return finish();
    }

private:
    const Program& program(uint64_t seed) {
        if (fixed_) return *fixed_;
        generated_ = source_(seed);
        bound_.forget();
        return generated_;
    }

    // The schedule of family `kind` for `seed`; a PCT schedule's steps are filled in by
    // one() when the bound is learned.
    Schedule schedule(Schedule::Kind kind, uint64_t seed) const {
        Schedule s;
        s.kind = kind;
        s.seed = seed;
        if (kind == Schedule::Kind::pct) {
            s.depth = o_.pct_depth;
            s.steps = o_.pct_steps;
        }
        return s;
    }

    // Runs p under s and counts it; false when the exploration must stop.
    bool one(uint64_t seed, const Program& p, Schedule s) {
        if (out_.runs >= o_.max_runs) return false;
        if (user_interrupted()) return stop(ExploreResult::Stop::interrupted);
        RunOptions opt = run_opt_;
        RunResult r;
        bool model_error = false;
        try {
            if (s.kind == Schedule::Kind::pct && s.steps == 0) s.steps = bound_.get(p, run_opt_);
            opt.schedule = s;
            r = run_program(p, opt);
        } catch (const ModelError& e) {
            model_error = true;
            r.message = e.what();
            r.schedule = e.schedule();
        }
        if (interrupted_) return stop(ExploreResult::Stop::interrupted);  // not counted
        if (s.kind == Schedule::Kind::pct) bound_.saw(r);
        ++out_.runs;
        if (model_error) ++out_.model_errors;
        else ++out_.verdicts[r.verdict];
        if (o_.on_run) o_.on_run(seed, p, r);
        bool failed = model_error || !r.ok();
        if (failed && out_.failures.size() < o_.keep_failures)
            out_.failures.push_back(ExploreFailure{seed, p, s, std::move(r), model_error});
        if (failed && o_.stop_at_first_failure) return stop(ExploreResult::Stop::failure);
        Clock::time_point now = Clock::now();
        if (o_.max_seconds > 0 && seconds(now) >= o_.max_seconds) return stop(ExploreResult::Stop::time);
        if (o_.progress && now >= next_progress_) {
            next_progress_ = now + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(o_.progress_seconds));
            out_.seconds = seconds(now);
            out_.pct_steps = bound_.value();
            o_.progress(out_);
        }
        return true;
    }

    bool user_interrupted() {
        if (!interrupted_ && o_.interrupted && o_.interrupted()) interrupted_ = true;
        return interrupted_;
    }

    bool stop(ExploreResult::Stop why) {
        out_.stopped = why;
        return false;
    }

    double seconds(Clock::time_point now) const { return std::chrono::duration<double>(now - t0_).count(); }

    ExploreResult finish() {
        out_.seconds = seconds(Clock::now());
        out_.pct_steps = bound_.value();
        if (o_.progress) o_.progress(out_);
        return std::move(out_);
    }

    const ProgramSource& source_;
    const Program* fixed_;
    Program generated_;
    const ExploreOptions& o_;
    RunOptions run_opt_;
    explore_detail::PctBound bound_;
    Clock::time_point t0_, next_progress_;
    bool interrupted_ = false;
    ExploreResult out_;
};

}  // namespace

std::string ExploreFailure::reproducer() const {
    if (!model_error) return result.reproducer();
    return result.schedule.empty() ? print_mmr(program) : replay_mmr(program, result.schedule);
}

uint64_t ExploreResult::not_ok() const {
    auto it = verdicts.find(Verdict::ok);
    return runs - (it == verdicts.end() ? 0 : it->second);
}

const char* stop_name(ExploreResult::Stop s) {
    switch (s) {
        case ExploreResult::Stop::done: return "done";
        case ExploreResult::Stop::time: return "time";
        case ExploreResult::Stop::failure: return "failure";
        case ExploreResult::Stop::interrupted: return "interrupted";
    }
    return "?";
}

ExploreResult explore(const ProgramSource& source, const ExploreOptions& options) {
    check_options(options);
    return Explorer(source, nullptr, options).go();
}

ExploreResult explore(const Program& program, const ExploreOptions& options) {
    check_options(options);
    return Explorer({}, &program, options).go();
}

}  // namespace mmrace
