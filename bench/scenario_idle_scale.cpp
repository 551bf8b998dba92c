#include "scenario.hpp"

namespace parker::bench {

void run_idle_scale(const Config&, ScenarioReport& report) { report.skip("not written yet"); }

}  // namespace parker::bench
