// SPDX-License-Identifier: GPL-2.0
#include "output_mode.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace qwatch {

namespace {

// A function's static: built before the first registration, whichever
// file's static objects the program initialises first.
std::vector<OutputMode> &registry()
{
  static std::vector<OutputMode> modes;
  return modes;
}

}  // namespace

RegisterOutputMode::RegisterOutputMode(const OutputMode &mode)
{
  auto &modes = registry();
  auto at = std::upper_bound(modes.begin(), modes.end(), mode.rank,
                             [](int rank, const OutputMode &other) { return rank < other.rank; });
  modes.insert(at, mode);
}

const std::vector<OutputMode> &output_modes()
{
  return registry();
}

const OutputMode &default_output_mode()
{
  for (const OutputMode &mode : registry()) {
    if (!mode.option)
      return mode;
  }
  // A build without the table's file: nothing can run.
  std::fputs("qwatch: no default output mode registered\n", stderr);
  std::abort();
}

}  // namespace qwatch
