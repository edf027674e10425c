#include "agent/commands.h"

// No exception leaves the program: run_guarded() turns one into a message and exit code 1.
int main(int argc, char** argv) {
  return sqlpost::run_guarded([&] { return sqlpost::run_cli(argc, argv); });
}
