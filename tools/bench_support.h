// sqlpost/tools/bench_support.h — what every benchmark program shares: a step that
// fails stops the program with "PROGRAM: what: why" and exit status 1.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "common/result.h"

namespace sqlpost::bench {

// The program's name in its messages (set it first thing in main()).
inline std::string& program_name() {
  static std::string name = "bench";
  return name;
}

[[noreturn]] inline void die(const std::string& what, const std::string& why) {
  (void)std::fprintf(stderr, "%s: %s: %s\n", program_name().c_str(), what.c_str(), why.c_str());
  std::exit(1);
}

inline void must(const Result<>& r, const char* what) {
  if (!r.ok()) {
    die(what, r.error().message);
  }
}

template <typename T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    die(what, r.error().message);
  }
  return std::move(r).value();
}

// A benchmark's main(): returns bench(argc, argv); an exception that escapes it
// ends the program with "PROGRAM: what" and status 1.
inline int guarded_main(int argc, char** argv, int (*bench)(int, char**)) {
  try {
    return bench(argc, argv);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "%s: %s\n", program_name().c_str(), e.what());
    return 1;
  }
}

}  // namespace sqlpost::bench
