#include "scenario.hpp"

namespace parker::bench {

void run_park_wake_throughput(const Config&, ScenarioReport& report) { report.skip("not written yet"); }

}  // namespace parker::bench
