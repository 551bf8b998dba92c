#include "scenario.hpp"

namespace parker::bench {

void run_wake_latency(const Config&, ScenarioReport& report) { report.skip("not written yet"); }

}  // namespace parker::bench
