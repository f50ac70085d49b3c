// SPDX-License-Identifier: GPL-2.0
// --quiet: nothing on stdout; --metrics is the output (as a service).
#include "cli.h"
#include "output_mode.h"

namespace qwatch {

namespace {

std::string refuse_quiet(const Options &options)
{
  if (options.metrics.empty())
    return "--quiet prints nothing: it needs --metrics ADDR:PORT to serve";
  if (options.count)
    return "--quiet prints no tables to count: it runs until stopped";
  if (options.histograms)
    return "--hist prints text; with --quiet, the metrics carry the histograms";
  return "";
}

const RegisterOutputMode kQuiet{{
    .option = "quiet",
    .help = "print nothing; serve --metrics only (as a service)",
    .rank = 30,
    .live_only = false,
    .needs_latency = true,
    .refuse = refuse_quiet,
    .create = [](const OutputContext &) -> std::unique_ptr<Output> {
      return std::make_unique<Output>();
    },
}};

}  // namespace

}  // namespace qwatch
