// SPDX-License-Identifier: GPL-2.0
// Feeds user/libbpf_handles.cpp the warnings libbpf prints when a program
// fails to load, with the format strings given on the command line (taken
// from the installed libbpf by test_libbpf_log.py), and prints what
// take_load_failure() makes of them.
#include "libbpf_handles.h"

#include <cstdarg>
#include <cstdio>

namespace {

void warn(const char *format, ...)
{
  va_list args;
  va_start(args, format);
  qwatch::record_libbpf_warning(format, args);
  va_end(args);
}

}  // namespace

int main(int argc, char **argv)
{
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s LOAD_FAILED_FORMAT LOG_FORMAT PROGRAM VERIFIER_LOG\n", argv[0]);
    return 2;
  }
  const char *program = argv[3];
  warn(argv[1], program, "Permission denied");
  warn(argv[2], program, argv[4]);
  std::printf("%s\n", qwatch::take_load_failure().c_str());
  // Taken: a second call has nothing left.
  std::printf("%s\n", qwatch::take_load_failure().c_str());
  return 0;
}
