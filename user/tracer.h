// SPDX-License-Identifier: GPL-2.0
// The BPF side of qwatch, from the reader's point of view: loads and
// attaches bpf/qwatch.bpf.c, hands each ring-buffer event to a callback and
// takes snapshots of every listener through the task_file iterator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "libbpf_handles.h"
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
  uint8_t protocol = 0;                  // 0: TCP and HSP
  uint32_t ring_buffer_bytes = 1 << 20;  // a power of two, at least a page
  bool track_latency = true;             // false: latency_ns stays 0 (cheaper probes)
};

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

  // Fills @listeners with every listener some process holds, as the
  // kernel has it now: one record per listener and process holding it.
  // Returns 0 or a negative errno.
  int snapshot(std::vector<qwatch_event> &listeners) const;

  // Events the BPF side could not queue because the ring buffer was full.
  uint64_t lost_events() const;

  // What the kernel counted for @listener (a struct sock address) while
  // attached; all zero before its first count.
  qwatch_counters counters(uint64_t listener) const;
  // Every counted listener's counters, by struct sock address.
  std::map<uint64_t, qwatch_counters> all_counters() const;
  // Counts lost because more listeners were counted than the map holds.
  uint64_t uncounted() const;

  // Whether HSP's own functions are probed: its module was loaded when the
  // tracer attached. Without them HSP listeners still show, with their
  // queue transitions, but not its drop reasons, listen() or retransmits.
  bool watching_hsp() const { return watching_hsp_; }
  bool hsp_loaded() const { return hsp_loaded_; }
  // kFentry or kKprobe: what the programs on vmlinux functions use.
  AttachMode attach_mode() const { return attach_mode_; }
  // Why HSP's probes are not attached although its module is loaded; "" if
  // they are (or the module is not loaded).
  const std::string &hsp_failure() const { return hsp_failure_; }
  // Why --attach auto fell back to kprobes; "" if it did not.
  const std::string &fentry_failure() const { return fentry_failure_; }

  // Follows the hsp module being unloaded and loaded again, re-attaching
  // HSP's probes where they were loaded at start; true when it changed.
  bool follow_hsp_module();

 private:
  static int handle_event(void *ctx, void *data, size_t size) noexcept;
  uint64_t sum_over_cpus(const bpf_map *map) const;
  void setup(const TracerSettings &settings, AttachMode mode, const btf *vmlinux);
  // Attaches every program of hsp_programs_, or none; false sets hsp_failure_.
  bool attach_hsp_programs();

  EventHandler on_event_;
  bool watching_hsp_ = false;
  bool hsp_loaded_ = false;
  AttachMode attach_mode_ = AttachMode::kKprobe;
  std::string fentry_failure_;
  std::string hsp_failure_;
  std::vector<bpf_program *> hsp_programs_;  // loaded because hsp was at start
  SkeletonPtr<qwatch_bpf> skel_;
  RingBufferPtr ring_buffer_;  // after skel_: freed before the maps it reads
};

}  // namespace qwatch
