#include "agent/commands.h"

int main(int argc, char** argv) { return sqlpost::run_cli(argc, argv); }
