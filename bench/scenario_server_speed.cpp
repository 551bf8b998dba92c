#include "scenario.hpp"

namespace parker::bench {

void run_server_speed(const Config&, ScenarioReport& report) { report.skip("not written yet"); }

}  // namespace parker::bench
