// SPDX-License-Identifier: GPL-2.0
#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>

namespace qwatch {

namespace {

// A kernel function and the programs that probe it. The required ones are
// the queue transitions themselves; the others add drop reasons, expiry and
// retransmits, and are left out where the kernel lacks (or inlined) them.
struct ProbedFunction {
  const char *name;
  bool required;
  std::vector<bpf_program *> kprobe_programs;
  std::vector<bpf_program *> fentry_programs;  // the same through BPF trampolines
  const char *module = nullptr;                // the module defining it; nullptr: vmlinux
};

bool kernel_has_function(const btf *vmlinux, const char *name)
{
  return btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
}

bool function_returns_bool(const btf *vmlinux, const char *name)
{
  int id = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC);
  if (id < 0)
    return false;
  const btf_type *proto = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
  if (!proto || !proto->type)
    return false;
  const btf_type *ret = btf__type_by_id(vmlinux, proto->type);
  return ret && btf_is_int(ret) && (btf_int_encoding(ret) & BTF_INT_BOOL);
}

// libbpf attaches kprobes through the kprobe PMU, or tracefs where the
// kernel is older; a kernel built without kprobes has neither.
bool kernel_has_kprobes()
{
  for (const char *path :
       {"/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events"}) {
    if (access(path, F_OK) == 0)
      return true;
  }
  return false;
}

// Tells one load of @module from the next: the inode of /sys/module/MODULE,
// made anew at each load, so an rmmod and insmod between two checks is seen;
// 0 while it is not loaded. (A built-in module has the directory, without
// initstate.)
uint64_t module_instance(const char *module)
{
  std::string path = std::string("/sys/module/") + module;
  struct stat st;
  if (access((path + "/initstate").c_str(), F_OK) != 0 || stat(path.c_str(), &st) != 0)
    return 0;
  return st.st_ino;
}

// HSP's IP protocol number, as the loaded module's "proto" parameter says
// (it moves at insmod time); 0 or a negative errno.
constexpr const char kHspProtocolParameter[] = "/sys/module/hsp/parameters/proto";

int read_hsp_protocol(uint32_t &protocol)
{
  FILE *f = std::fopen(kHspProtocolParameter, "r");
  if (!f)
    return -errno;
  int value = 0;
  bool parsed = std::fscanf(f, "%d", &value) == 1;
  std::fclose(f);
  if (!parsed || value <= 0 || value > 255)
    return -EINVAL;
  protocol = static_cast<uint32_t>(value);
  return 0;
}

// perf_event_open() is how libbpf attaches a kprobe. Debian's kernels
// refuse it to anyone without CAP_SYS_ADMIN while kernel.perf_event_paranoid
// is above 2, whatever other capability the caller has: say so when that is
// why an attach failed with @err.
std::string perf_event_paranoid_hint(int err)
{
  if (err != EACCES && err != EPERM)
    return "";
  int paranoid = 0;
  if (FILE *f = std::fopen("/proc/sys/kernel/perf_event_paranoid", "r")) {
    if (std::fscanf(f, "%d", &paranoid) != 1)
      paranoid = 0;
    std::fclose(f);
  }
  if (paranoid <= 2)
    return "";
  return " (kernel.perf_event_paranoid=" + std::to_string(paranoid) +
         " refuses perf_event_open() without CAP_SYS_ADMIN; 2 allows it with CAP_PERFMON)";
}

// A dump's records: a listener's backlog of children, requests of every
// dumped listener (72 bytes each: some 58000 records).
constexpr uint32_t kQueueDumpBytes = 4 << 20;

// libbpf fills CONFIG_HZ (the jiffies times of --queues) from the kernel's
// config, /boot/config-RELEASE or /proc/config.gz, and fails the load
// without one; then the times are unknown instead (CONFIG_HZ=0).
const char *kconfig_fallback()
{
  struct utsname uts;
  if (uname(&uts) == 0 && access((std::string("/boot/config-") + uts.release).c_str(), R_OK) == 0)
    return nullptr;
  if (access("/proc/config.gz", R_OK) == 0)
    return nullptr;
  return "CONFIG_HZ=0\n";
}

}  // namespace

Tracer::Tracer(const TracerSettings &settings, EventHandler on_event)
    : on_event_(std::move(on_event))
{
  BtfPtr vmlinux{
      check_ptr(btf__load_vmlinux_btf(), "reading the kernel's BTF (needs CONFIG_DEBUG_INFO_BTF)")};
  if (settings.attach != AttachMode::kAuto) {
    setup(settings, settings.attach, vmlinux.get());
    return;
  }
  // fentry where the kernel has BPF trampolines, kprobes otherwise.
  try {
    setup(settings, AttachMode::kFentry, vmlinux.get());
  } catch (const SetupError &e) {
    fentry_failure_ = e.what();
    queue_ring_.reset();
    ring_buffer_.reset();
    hsp_links_.clear();
    counted_listeners_link_.reset();
    skel_.reset();
    setup(settings, AttachMode::kKprobe, vmlinux.get());
  }
}

void Tracer::setup(const TracerSettings &settings, AttachMode mode, const btf *vmlinux)
{
  bool kprobes = kernel_has_kprobes();
  if (mode == AttachMode::kKprobe && !kprobes)
    throw SetupError(EOPNOTSUPP, "this kernel has no kprobes (needs CONFIG_KPROBES)");

  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .kconfig = kconfig_fallback());
  skel_.reset(check_ptr(qwatch_bpf::open(&open_opts), "opening the BPF object"));
  skel_->rodata->filter_netns = settings.netns;
  skel_->rodata->filter_lport = settings.lport;
  skel_->rodata->filter_protocol = settings.protocol;
  skel_->rodata->track_latency = settings.track_latency;
  skel_->rodata->stream_events = settings.stream_events;
  if (!settings.track_latency)
    check(bpf_map__set_max_entries(skel_->maps.listener_latencies, 1),
          "sizing the latencies' map");
  check(bpf_map__set_max_entries(skel_->maps.events,
                                 settings.stream_events
                                     ? settings.ring_buffer_bytes
                                     : static_cast<uint32_t>(sysconf(_SC_PAGESIZE))),
        "sizing the ring buffer");
  // One snapshot program: the plain one, or the one that also dumps the
  // queues, whose ring buffer is otherwise a page.
  queue_dump_ = settings.queue_dump;
  check(bpf_map__set_max_entries(skel_->maps.queue_entries,
                                 queue_dump_ ? kQueueDumpBytes
                                             : static_cast<uint32_t>(sysconf(_SC_PAGESIZE))),
        "sizing the queue dump's ring buffer");
  bpf_program__set_autoload(queue_dump_ ? skel_->progs.dump_listeners : skel_->progs.dump_queues,
                            false);
  skel_->rodata->hash_add_returns_bool =
      function_returns_bool(vmlinux, "inet_csk_reqsk_queue_hash_add");

  auto *progs = &skel_->progs;
  // kprobe mode: __inet_accept() where there is one (see inet_accept_graft).
  std::vector<bpf_program *> accept_kprobes = {progs->inet_csk_accept_entry,
                                               progs->inet_csk_accept_return};
  if (mode == AttachMode::kKprobe && kernel_has_function(vmlinux, "__inet_accept")) {
    for (bpf_program *prog : accept_kprobes)
      bpf_program__set_autoload(prog, false);
    accept_kprobes = {progs->inet_accept_graft};
  } else {
    bpf_program__set_autoload(progs->inet_accept_graft, false);
  }
  // Without events or latencies (which need the request), the final ACK's
  // window counts the child its handler returns: no hashdance probe.
  counting_only_ = !settings.stream_events && !settings.track_latency;
  skel_->rodata->children_from_windows = counting_only_;
  // The hashing's programs of the other way (the table below names one).
  for (bpf_program *prog :
       counting_only_ ? std::vector<bpf_program *>{progs->hash_add_entry, progs->hash_add_return,
                                                  progs->hash_add_exit}
                     : std::vector<bpf_program *>{progs->hash_add_entry_counting,
                                                  progs->hash_add_fentry_counting})
    bpf_program__set_autoload(prog, false);
  const ProbedFunction functions[] = {
      {"inet_listen",
       false,
       {progs->inet_listen_entry, progs->inet_listen_return},
       {progs->inet_listen_exit}},
      {"inet_csk_listen_stop",
       false,
       {progs->inet_csk_listen_stop_entry},
       {progs->inet_csk_listen_stop_fentry}},
      // Counting only, its entry just marks the SYN's window (see
      // mib_window.hashed): no pending entry, no event.
      {"inet_csk_reqsk_queue_hash_add",
       true,
       counting_only_ ? std::vector<bpf_program *>{progs->hash_add_entry_counting}
                     : std::vector<bpf_program *>{progs->hash_add_entry, progs->hash_add_return},
       counting_only_ ? std::vector<bpf_program *>{progs->hash_add_fentry_counting}
                     : std::vector<bpf_program *>{progs->hash_add_exit}},
      // The segment handlers the counters' windows open around.
      {"tcp_conn_request",
       false,
       {progs->tcp_conn_request_entry, progs->tcp_conn_request_return},
       {progs->tcp_conn_request_fentry, progs->tcp_conn_request_exit}},
      {"tcp_v4_conn_request",
       false,
       {progs->tcp_v4_conn_request_entry, progs->tcp_v4_conn_request_return},
       {progs->tcp_v4_conn_request_fentry, progs->tcp_v4_conn_request_exit}},
      {"tcp_v6_conn_request",
       false,
       {progs->tcp_v6_conn_request_entry, progs->tcp_v6_conn_request_return},
       {progs->tcp_v6_conn_request_fentry, progs->tcp_v6_conn_request_exit}},
      {"subflow_v4_conn_request",
       false,
       {progs->subflow_v4_conn_request_entry, progs->subflow_v4_conn_request_return},
       {progs->subflow_v4_conn_request_fentry, progs->subflow_v4_conn_request_exit}},
      {"subflow_v6_conn_request",
       false,
       {progs->subflow_v6_conn_request_entry, progs->subflow_v6_conn_request_return},
       {progs->subflow_v6_conn_request_fentry, progs->subflow_v6_conn_request_exit}},
      {"tcp_check_req",
       false,
       {progs->tcp_check_req_entry, progs->tcp_check_req_return},
       {progs->tcp_check_req_fentry, progs->tcp_check_req_exit}},
      {"cookie_v4_check",
       false,
       {progs->cookie_v4_check_entry, progs->cookie_v4_check_return},
       {progs->cookie_v4_check_fentry, progs->cookie_v4_check_exit}},
      {"cookie_v6_check",
       false,
       {progs->cookie_v6_check_entry, progs->cookie_v6_check_return},
       {progs->cookie_v6_check_fentry, progs->cookie_v6_check_exit}},
      // Children queued by a syncookie ACK or a TFO SYN (not the hashdance).
      {"inet_csk_reqsk_queue_add",
       false,
       {progs->queue_add_return},
       {progs->queue_add_exit}},
      {"tcp_req_err", false, {progs->tcp_req_err_entry}, {progs->tcp_req_err_fentry}},
      {"inet_csk_complete_hashdance",
       true,
       {progs->hashdance_entry, progs->hashdance_return},
       {progs->hashdance_exit}},
      {"__inet_csk_reqsk_queue_drop",
       false,
       {progs->req_drop_entry, progs->req_drop_return},
       {progs->req_drop_exit}},
      {"tcp_rtx_synack", false, {progs->tcp_retransmit_synack}, {progs->tcp_retransmit_synack}},
      {"inet_csk_accept", true, accept_kprobes, {progs->inet_csk_accept_exit}},
      {"hsp_listen", false, {progs->hsp_listen_entry, progs->hsp_listen_return}, {}, "hsp"},
      {"hsp_conn_request",
       false,
       {progs->hsp_conn_request_entry, progs->hsp_conn_request_return},
       {},
       "hsp"},
      {"hsp_check_req",
       false,
       {progs->hsp_check_req_entry, progs->hsp_check_req_return},
       {},
       "hsp"},
      {"hsp_rtx_synack", false, {progs->hsp_rtx_synack_entry}, {}, "hsp"},
  };
  hsp_programs_.clear();
  // --proto tcp shows no HSP listener: spare HSP its probes.
  want_hsp_ = settings.protocol != QWATCH_PROTO_TCP;
  uint64_t hsp_instance = module_instance("hsp");
  // HSP's functions: kprobes only (the module has BTF on 6.12 but not on 6.1).
  // A kprobe program loads without its target, so they are loaded whether
  // or not the module is, and attached to each load of it.
  bool probe_hsp = want_hsp_ && kprobes;
  auto has = [vmlinux](const char *name) { return kernel_has_function(vmlinux, name); };
  // tcp_conn_request()'s window nests in its callers' (the address
  // families' and MPTCP's conn_request): where each of them has one, its
  // own would cost a second trampoline per SYN for nothing.
  bool syn_windows_cover_tcp_conn_request =
      has("tcp_v4_conn_request") && has("tcp_v6_conn_request") &&
      ((has("subflow_v4_conn_request") && has("subflow_v6_conn_request")) ||
       btf__find_by_name_kind(vmlinux, "mptcp_subflow_request_sock", BTF_KIND_STRUCT) < 0);
  auto needed = [&](const ProbedFunction &function) {
    std::string_view name = function.name;
    // Without an event stream: these only ever report a transition (and
    // a request's start, for the handshake's latency).
    if (!settings.stream_events && (name == "inet_listen" || name == "hsp_listen"))
      return false;
    if (name == "__inet_csk_reqsk_queue_drop" && !settings.stream_events &&
        !settings.count_expiries)
      return false;
    // Counting only, the windows count children, and accepts are what
    // left the accept queue between resyncs (ListenerTable::finish_resync).
    if (counting_only_ && (name == "inet_csk_complete_hashdance" || name == "inet_csk_accept"))
      return false;
    return !(name == "tcp_conn_request" && syn_windows_cover_tcp_conn_request);
  };
  for (const auto &function : functions) {
    bool use_fentry = mode == AttachMode::kFentry && !function.module;
    const auto &used = use_fentry ? function.fentry_programs : function.kprobe_programs;
    const auto &unused = use_fentry ? function.kprobe_programs : function.fentry_programs;
    for (bpf_program *prog : unused) {
      if (std::find(used.begin(), used.end(), prog) == used.end())
        bpf_program__set_autoload(prog, false);
    }
    bool present = function.module ? probe_hsp : has(function.name);
    if (!present && function.required)
      throw SetupError(ENOENT, std::string("this kernel has no ") + function.name + "() to probe");
    if (present && needed(function)) {
      if (function.module)
        hsp_programs_.insert(hsp_programs_.end(), used.begin(), used.end());
      continue;
    }
    for (bpf_program *prog : used)
      bpf_program__set_autoload(prog, false);
  }

  // HSP's probes attach on their own, to each load of the module (the
  // tracer owns their links): without them HSP is still listed (listeners
  // only), so their failure is reported, not fatal.
  for (bpf_program *prog : hsp_programs_)
    bpf_program__set_autoattach(prog, false);

  // An iterator over a map is attached with that map, below.
  bpf_program__set_autoattach(progs->dump_counted_listeners, false);

  const char *how = mode == AttachMode::kFentry ? " (fentry)" : " (kprobes)";
  check(qwatch_bpf::load(skel_.get()), std::string("loading the BPF programs") + how);
  // Before the generic hooks attach: they tell HSP by its protocol number.
  hsp_instance_ = 0;
  adopt_hsp_module(hsp_instance);
  if (int err = qwatch_bpf::attach(skel_.get()); err) {
    std::string hint = mode == AttachMode::kKprobe ? perf_event_paranoid_hint(-err) : "";
    check(err, std::string("attaching the BPF programs") + how + hint);
  }
  union bpf_iter_link_info counted{};
  counted.map.map_fd = static_cast<uint32_t>(bpf_map__fd(skel_->maps.listener_counters));
  LIBBPF_OPTS(bpf_iter_attach_opts, counted_opts, .link_info = &counted,
              .link_info_len = sizeof(counted));
  counted_listeners_link_.reset(
      check_ptr(bpf_program__attach_iter(progs->dump_counted_listeners, &counted_opts),
                std::string("attaching the counted listeners' iterator") + how));
  ring_buffer_.reset(check_ptr(
      ring_buffer__new(bpf_map__fd(skel_->maps.events), &Tracer::handle_event, this, nullptr),
      "creating the ring buffer"));
  if (queue_dump_)
    queue_ring_.reset(check_ptr(ring_buffer__new(bpf_map__fd(skel_->maps.queue_entries),
                                                 &Tracer::handle_queue_record, this, nullptr),
                                "creating the queue dump's ring buffer"));
  attach_mode_ = mode;
}

void Tracer::adopt_hsp_module(uint64_t instance)
{
  // Probes on an old module's text went with it.
  hsp_links_.clear();
  hsp_instance_ = instance;
  hsp_failure_.clear();
  hsp_reason_.clear();
  skel_->bss->hsp_protocol = 0;
  hsp_state_ = instance ? HspState::kLoadedNotWatched : HspState::kNotLoaded;
  if (!instance) {
    hsp_reason_ = "module not loaded: listeners only";
    return;
  }
  if (!want_hsp_) {
    hsp_reason_ = "not selected";
    return;
  }
  uint32_t protocol = 0;
  if (int err = read_hsp_protocol(protocol); err < 0) {
    // Without its number no HSP socket can be told from any other.
    hsp_reason_ = "protocol number unknown: not watched";
    hsp_failure_ = std::string("reading ") + kHspProtocolParameter + ": " + std::strerror(-err) +
                   "; HSP listeners are not watched";
    return;
  }
  skel_->bss->hsp_protocol = protocol;
  if (hsp_programs_.empty()) {
    hsp_reason_ = "no kprobes: listeners only";
    return;
  }
  if (!attach_hsp_programs()) {
    hsp_reason_ = "probes not attached: listeners only";
    return;
  }
  hsp_state_ = HspState::kWatched;
}

bool Tracer::attach_hsp_programs()
{
  std::vector<LinkPtr> links;
  for (bpf_program *prog : hsp_programs_) {
    LinkPtr link{bpf_program__attach(prog)};
    if (!link) {
      int err = errno;
      hsp_failure_ = std::string("attaching HSP's kprobe ") + bpf_program__name(prog) + ": " +
                     std::strerror(err) + perf_event_paranoid_hint(err) +
                     "; HSP listeners are shown without them";
      take_load_failure();  // libbpf's warnings about it: reported above, not kept
      return false;         // the links attached so far go with @links
    }
    links.push_back(std::move(link));
  }
  hsp_links_ = std::move(links);
  return true;
}

ModuleChange Tracer::follow_hsp_module()
{
  uint64_t instance = module_instance("hsp");
  if (instance == hsp_instance_)
    return ModuleChange::kNone;
  bool reloaded = instance && hsp_instance_;
  adopt_hsp_module(instance);
  return reloaded ? ModuleChange::kReloaded : ModuleChange::kLoadedOrUnloaded;
}

int Tracer::handle_event(void *ctx, void *data, size_t size) noexcept
{
  if (size < sizeof(qwatch_event))
    return -EINVAL;
  auto *tracer = static_cast<Tracer *>(ctx);
  try {
    tracer->on_event_(*static_cast<const qwatch_event *>(data));
  } catch (...) {
    return -ENOMEM;  // nothing may unwind through libbpf; stop polling instead
  }
  return 0;
}

int Tracer::handle_queue_record(void *ctx, void *data, size_t size) noexcept
{
  if (size < sizeof(qwatch_queue_entry))
    return -EINVAL;
  auto *tracer = static_cast<Tracer *>(ctx);
  try {
    tracer->queue_records_.push_back(*static_cast<const qwatch_queue_entry *>(data));
  } catch (...) {
    return -ENOMEM;  // nothing may unwind through libbpf
  }
  return 0;
}

int Tracer::drain()
{
  return ring_buffer__consume(ring_buffer_.get());
}

int Tracer::event_fd() const
{
  return ring_buffer__epoll_fd(ring_buffer_.get());
}

int Tracer::read_iterator(bpf_link *link, std::vector<qwatch_event> &records)
{
  FileDescriptor iter{bpf_iter_create(bpf_link__fd(link))};
  if (iter.get() < 0)
    return -errno;

  std::string bytes;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(iter.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  for (size_t at = 0; at + sizeof(qwatch_event) <= bytes.size(); at += sizeof(qwatch_event)) {
    qwatch_event event;
    std::memcpy(&event, bytes.data() + at, sizeof(event));
    records.push_back(event);
  }
  return 0;
}

int Tracer::snapshot(std::vector<qwatch_event> &listeners, QueueDump *queues)
{
  const bool dumping = queue_dump_ && queues;
  auto *bss = skel_->bss;
  if (dumping) {
    // What a dump cut short left behind is not this dump's.
    if (int err = ring_buffer__consume(queue_ring_.get()); err < 0)
      return err;
    queue_records_.clear();
    bss->dump_generation = bss->dump_generation + 1 ? bss->dump_generation + 1 : 1;
    bss->dump_table_count = 0;
    bss->dump_lost = 0;
  }
  listeners.clear();
  bss->snapshot_generation = bss->snapshot_generation + 1 ? bss->snapshot_generation + 1 : 1;
  bss->snapshot_marked = 0;
  uint64_t stops = __atomic_load_n(&bss->listener_stops, __ATOMIC_ACQUIRE);
  bpf_link *files = queue_dump_ ? skel_->links.dump_queues : skel_->links.dump_listeners;
  if (int err = read_iterator(files, listeners); err < 0)
    return err;
  // Then those no file led to (see dump_counted_listeners; the files' own
  // are skipped there, and here should a generation have wrapped), unless
  // the files led to every counted one: the walk visits every bucket. A
  // listener that stopped meanwhile could make up for one not led to.
  std::vector<qwatch_event> counted;
  if (__atomic_load_n(&bss->snapshot_marked, __ATOMIC_ACQUIRE) !=
          __atomic_load_n(&bss->counted_listeners, __ATOMIC_ACQUIRE) ||
      __atomic_load_n(&bss->listener_stops, __ATOMIC_ACQUIRE) != stops) {
    if (int err = read_iterator(counted_listeners_link_.get(), counted); err < 0)
      return err;
  }
  std::unordered_set<uint64_t> held;
  held.reserve(listeners.size());
  for (const qwatch_event &event : listeners)
    held.insert(event.listener);
  for (const qwatch_event &event : counted) {
    if (!held.contains(event.listener))
      listeners.push_back(event);
  }
  if (dumping) {
    if (int err = ring_buffer__consume(queue_ring_.get()); err < 0)
      return err;
    *queues = assemble_queue_dump(queue_records_, skel_->bss->dump_lost != 0);
    queue_records_.clear();
  }
  return 0;
}

int Tracer::sum_over_cpus(const bpf_map *map, uint64_t &total) const
{
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0)
    return cpus < 0 ? cpus : -EINVAL;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  uint32_t key = 0;
  if (int err = bpf_map__lookup_elem(map, &key, sizeof(key), per_cpu.data(),
                                     per_cpu.size() * sizeof(uint64_t), 0))
    return err;
  total = 0;
  for (uint64_t value : per_cpu)
    total += value;
  return 0;
}

int Tracer::lost_events(uint64_t &total) const
{
  return sum_over_cpus(skel_->maps.lost_events, total);
}

int Tracer::uncounted(uint64_t &total) const
{
  return sum_over_cpus(skel_->maps.uncounted, total);
}

int Tracer::for_each_entry(const bpf_map *map, size_t value_size,
                           const std::vector<uint64_t> &keys,
                           const std::function<void(uint64_t, const void *)> &visit) const
{
  // Two ways to read a hash map, each the cheaper one at one end. Key by
  // key costs a syscall per listener: with 10k listeners, most of a
  // resync. A batch costs one syscall per thousand entries, but walks and
  // locks every bucket of the map (16k for the counters), which on a host
  // with a few listeners cost the reader half again its CPU.
  constexpr size_t kBatchFrom = 256;
  if (keys.size() < kBatchFrom) {
    std::vector<unsigned char> value(value_size);
    for (uint64_t key : keys) {
      // ENOENT: none counted, or it stopped listening.
      int err = bpf_map__lookup_elem(map, &key, sizeof(key), value.data(), value_size, 0);
      if (!err)
        visit(key, value.data());
      else if (err != -ENOENT)
        return err;
    }
    return 0;
  }
  constexpr uint32_t kBatch = 1024;
  std::vector<uint64_t> batch_keys(kBatch);
  std::vector<unsigned char> values(kBatch * value_size);
  uint64_t position = 0, next_position = 0;  // the kernel's: a bucket for a hash map
  int fd = bpf_map__fd(map);
  for (bool first = true;; first = false) {
    uint32_t count = kBatch;
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &position, &next_position,
                                   batch_keys.data(), values.data(), &count, nullptr);
    if (err && err != -ENOENT)
      return err;
    for (uint32_t i = 0; i < count; i++)
      visit(batch_keys[i], values.data() + i * value_size);
    if (err == -ENOENT)  // the end
      return 0;
    position = next_position;
  }
}

namespace {

// A visitor for Tracer::for_each_entry() that copies every entry into @all.
template <typename Value>
auto into(std::unordered_map<uint64_t, Value> &all)
{
  all.clear();
  return [&all](uint64_t key, const void *value) { std::memcpy(&all[key], value, sizeof(Value)); };
}

}  // namespace

int Tracer::counters(const std::vector<uint64_t> &listeners,
                     std::unordered_map<uint64_t, qwatch_counters> &found) const
{
  return for_each_entry(skel_->maps.listener_counters, sizeof(qwatch_counters), listeners,
                        into(found));
}

int Tracer::latencies(const std::vector<uint64_t> &listeners,
                      std::unordered_map<uint64_t, qwatch_latencies> &found) const
{
  return for_each_entry(skel_->maps.listener_latencies, sizeof(qwatch_latencies), listeners,
                        into(found));
}

}  // namespace qwatch
