// SPDX-License-Identifier: GPL-2.0
// Output modes: how qwatch shows what it sees (a live table, event lines,
// JSON lines, nothing but --metrics, the table with each queue's contents
// for --queues). Each mode is one class in its own file (output_*.cpp),
// registered there with its option, its --help line, the options it
// refuses and an option of its own: the command line, --help and the watch
// know the modes through output_modes().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "listener_table.h"
#include "netns.h"
#include "queue_dump.h"
#include "tracer.h"

namespace qwatch {

struct Options;

// What qwatch itself is doing, for an output to show (the table's footer).
struct ReaderStatus {
  uint64_t lost_events;  // to a full ring buffer, so far
  bool tcp;              // what --proto selected
  bool hsp;
  HspState hsp_state;
  std::string hsp_reason;  // kLoadedNotWatched: why
  AttachMode attach;
  std::string fentry_failure;  // why --attach auto took kprobes
};

// The listeners shown (those --pid selects, fullest first) and the reader's
// status, as of the last resync.
struct WatchView {
  std::vector<const ListenerState *> listeners;
  ReaderStatus status;
  const QueueDump *queues;  // what their queues held; nullptr: not dumped
};

// What an output is made with; it outlives the output.
struct OutputContext {
  const Options &options;
  const NetnsNames &netns_names;        // refreshed at each resync
  int64_t realtime_minus_monotonic_ns;  // to show an event's time of day
};

// One way of showing what qwatch sees. A live run calls start() once the
// first snapshot is in, then event() for each transition of a shown
// listener, lost_events() and hsp_module() when they change, tick() after
// each interval's resync, and finish() at the end. A --once run calls
// listeners() only.
class Output {
 public:
  virtual ~Output() = default;

  virtual void start(const WatchView &) {}
  virtual void event(const qwatch_event &, uint32_t /*listener_id*/) {}
  virtual void lost_events(uint64_t /*ts_ns*/, uint64_t /*total*/) {}
  virtual void hsp_module(uint64_t /*ts_ns*/, bool /*loaded*/, bool /*watched*/) {}
  // false: this output is done (e.g. it printed the tables it was asked
  // for), and so is the run.
  virtual bool tick(const WatchView &) { return true; }
  // The listeners as they are now (--once).
  virtual void listeners(const WatchView &) {}
  virtual void finish(const WatchView &) {}
};

// An option only one mode takes (--queue-rows of --queues), registered
// with it: given without that mode, it is refused. Its value reaches the
// mode as Options::mode_options[name].
struct ModeOption {
  const char *name;        // the long option, without "--"
  const char *value_name;  // its value in --help and the synopsis ("N")
  const char *help;        // its line in --help, after the option and value
  // What is wrong with @value, as one line; "" if nothing.
  std::string (*check)(const char *value);
};

struct OutputMode {
  const char *option;  // the long option choosing it, without "--"; nullptr: the default
  const char *help;    // its line in --help (after the option)
  int rank;            // its place in --help and in messages: lower first
  bool live_only;      // shows transitions: refused with --once
  bool needs_latency;  // shows latencies: the probes must measure them
  // What is wrong with @options for this mode, as one line; "" if nothing
  // (nullptr: it takes every option the common rules allow).
  std::string (*refuse)(const Options &options);
  std::unique_ptr<Output> (*create)(const OutputContext &context);
  bool dumps_queues = false;  // each resync also dumps the listeners' queues (WatchView::queues)
  // Another mode's option this one accepts, to print in that mode's format
  // (--queues --json); nullptr: none. Options::format says it was given.
  const char *takes_format = nullptr;
  const ModeOption *own_option = nullptr;  // nullptr: none
  // It prints transitions (when live): only then do the probes stream an
  // event per transition; every other view is kept in maps.
  bool shows_transitions = false;
  // It prints every counter of a listener (JSON), not only the table's.
  bool prints_every_counter = false;
};

// Registers a mode while the program starts: one static object in the
// mode's file, `const RegisterOutputMode kRegistration{{...}};`.
class RegisterOutputMode {
 public:
  explicit RegisterOutputMode(const OutputMode &mode);
};

// Every registered mode, by rank.
const std::vector<OutputMode> &output_modes();
// The mode without an option: what qwatch shows unless told otherwise.
const OutputMode &default_output_mode();

}  // namespace qwatch
