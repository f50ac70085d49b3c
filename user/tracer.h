// SPDX-License-Identifier: GPL-2.0
// The BPF side of qwatch, from the reader's point of view: loads and
// attaches bpf/qwatch.bpf.c, hands each ring-buffer event to a callback and
// takes snapshots of every listener through the task_file iterator.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <string>
#include <vector>

#include "libbpf_handles.h"
#include "queue_dump.h"
#include "qwatch.h"
#include "qwatch.skel.h"

namespace qwatch {

// How the programs attach to kernel functions: BPF trampolines (fentry and
// fexit) or kprobes; auto takes fentry where the kernel supports it.
enum class AttachMode { kAuto, kFentry, kKprobe };

struct TracerSettings {
  AttachMode attach = AttachMode::kAuto;
  uint32_t netns = 0;                    // 0: every network namespace
  uint16_t lport = 0;                    // 0: every port
  uint8_t protocol = QWATCH_PROTO_NONE;  // enum qwatch_protocol; NONE: TCP and HSP
  uint32_t ring_buffer_bytes = 1 << 20;  // a power of two, at least a page
  bool track_latency = true;             // false: latency_ns stays 0 (cheaper probes)
  // false: no events at all, only counters and snapshots (the cheapest)
  bool stream_events = true;
  // false: qwatch_counters::expired_requests stays 0 (one probe fewer)
  bool count_expiries = true;
  bool queue_dump = false;               // snapshots also dump each listener's queues
};

// How much of HSP the tracer sees. Watched: its module is loaded and HSP's
// own functions are probed. Loaded, not watched: see hsp_reason(); its
// listeners and queue transitions may still show (the generic hooks see
// every protocol), without HSP's drop reasons, listen() or retransmits.
enum class HspState { kNotLoaded, kLoadedNotWatched, kWatched };

// What follow_hsp_module() saw: the module loaded or unloaded, or unloaded
// and loaded again since the last check.
enum class ModuleChange { kNone, kLoadedOrUnloaded, kReloaded };

class Tracer {
 public:
  using EventHandler = std::function<void(const qwatch_event &)>;

  // Throws SetupError when the programs cannot be loaded or attached.
  Tracer(const TracerSettings &settings, EventHandler on_event);

  // Delivers the events already queued, without waiting; returns their
  // number or a negative errno.
  int drain();
  // Readable when events are queued: for the reader's own poll().
  int event_fd() const;

  // The reads below return 0 or a negative errno.

  // Fills @listeners with every listener some process holds, as the
  // kernel has it now: one record per listener and process holding it;
  // then one (pid 0) for each listener the probes counted that no process
  // holds.
  // With TracerSettings::queue_dump, @queues (if given) gets what their
  // queues hold, read in the same pass.
  int snapshot(std::vector<qwatch_event> &listeners, QueueDump *queues = nullptr);
  // Events the BPF side could not queue because the ring buffer was full.
  int lost_events(uint64_t &total) const;
  // Counts lost because more listeners were counted than the map holds.
  int uncounted(uint64_t &total) const;
  // The counters of @listeners (struct sock addresses), by listener: what
  // the kernel counted for each while attached. A listener that stopped
  // listening, or that nothing was counted for, has no entry.
  int counters(const std::vector<uint64_t> &listeners,
               std::unordered_map<uint64_t, qwatch_counters> &found) const;
  // Their latency histograms, likewise (with track_latency).
  int latencies(const std::vector<uint64_t> &listeners,
                std::unordered_map<uint64_t, qwatch_latencies> &found) const;

  HspState hsp_state() const { return hsp_state_; }
  // Why HSP is not watched (not kWatched), as the table's footer says it.
  const std::string &hsp_reason() const { return hsp_reason_; }
  // Why HSP is not (fully) watched although its module is loaded, as one
  // sentence for stderr; "" when nothing went wrong.
  const std::string &hsp_failure() const { return hsp_failure_; }
  // kFentry or kKprobe: what the programs on vmlinux functions use.
  AttachMode attach_mode() const { return attach_mode_; }
  // Why --attach auto fell back to kprobes; "" if it did not.
  const std::string &fentry_failure() const { return fentry_failure_; }
  // Whether a probe counts accept()s (not when only counting: then the
  // accepts are what left the accept queue, see ListenerTable).
  bool accepts_probed() const { return !counting_only_; }

  // Follows the hsp module being loaded, unloaded and loaded again: tells
  // the BPF side the loaded module's protocol number and attaches HSP's
  // probes to each new load (they are loaded whenever HSP is wanted and the
  // kernel has kprobes, whether or not the module was loaded at start).
  ModuleChange follow_hsp_module();

 private:
  static int handle_event(void *ctx, void *data, size_t size) noexcept;
  static int handle_queue_record(void *ctx, void *data, size_t size) noexcept;
  int sum_over_cpus(const bpf_map *map, uint64_t &total) const;
  // @visit(key, value) for the entries of hash map @map (u64 keys) that
  // @keys names, and maybe others.
  int for_each_entry(const bpf_map *map, size_t value_size, const std::vector<uint64_t> &keys,
                     const std::function<void(uint64_t, const void *)> &visit) const;
  // Appends the records one run of the iterator @link writes.
  static int read_iterator(bpf_link *link, std::vector<qwatch_event> &records);
  void setup(const TracerSettings &settings, AttachMode mode, const btf *vmlinux);
  // Takes the module instance @instance (0: unloaded) as the one to watch.
  void adopt_hsp_module(uint64_t instance);
  // Attaches every program of hsp_programs_, or none; false sets hsp_failure_.
  bool attach_hsp_programs();

  EventHandler on_event_;
  bool want_hsp_ = true;       // --proto did not rule HSP out
  uint64_t hsp_instance_ = 0;  // the loaded module's /sys/module/hsp inode; 0: none
  HspState hsp_state_ = HspState::kNotLoaded;
  std::string hsp_reason_;
  std::string hsp_failure_;
  AttachMode attach_mode_ = AttachMode::kKprobe;
  std::string fentry_failure_;
  std::vector<bpf_program *> hsp_programs_;  // loaded: HSP wanted, kernel has kprobes
  SkeletonPtr<qwatch_bpf> skel_;
  std::vector<LinkPtr> hsp_links_;  // after skel_: destroyed before its programs
  LinkPtr counted_listeners_link_;  // dump_counted_listeners over listener_counters
  RingBufferPtr ring_buffer_;       // after skel_: freed before the maps it reads
  RingBufferPtr queue_ring_;        // --queues: the dump's records
  bool queue_dump_ = false;
  bool counting_only_ = false;  // no events, no latencies: see the constructor
  std::vector<qwatch_queue_entry> queue_records_;  // of the dump being read
};

}  // namespace qwatch
