// heavy_server: parse the options, run the server. Everything else is in heavy_server_core.
#include "heavy/app.hpp"
#include "heavy/config.hpp"

int main(int argc, char** argv) {
  heavy::OptionsOutcome options = heavy::parse_options(argc, argv);
  if (!options.config) return options.exit_code;
  return heavy::run_app(*options.config);
}
