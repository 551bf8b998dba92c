// Catch2 2.13 wraps a failing test's name at the console width (79 by default) and indents
// the continuation to just after a ": " it finds in the first line. When that colon sits near
// the end of the line, nothing fits after the indent and the wrapper loops forever, printing
// rules: one failure in a long-named test became a 3.4 GB log and a timeout. Our names are
// sentences, all well under 200 characters, so at this width none of them wraps at all.
#define CATCH_CONFIG_CONSOLE_WIDTH 200
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
