#include "scenario.hpp"

namespace parker::bench {

void run_proxy_nutcracker(const Config&, ScenarioReport& report) { report.skip("not written yet"); }

}  // namespace parker::bench
