// SPDX-License-Identifier: GPL-2.0
/*
 * qwatch: listen-queue transitions of every inet_connection_sock listener.
 *
 * The hooks sit on the generic inet_csk layer wherever it exists, so TCP and
 * HSP (kmod/) are seen the same way. Every event carries the listener's
 * queue values read after the transition (see struct qwatch_event).
 *
 * The per-listener counters (struct qwatch_counters) come from the kernel's
 * own counters: around each function that handles one segment for a
 * listener (a SYN, a final ACK, a syncookie ACK) this CPU's share of the
 * namespace's SNMP counters is read at entry and at return. The segment is
 * handled in softirq (or with BH off) without the listener locked, but
 * nothing else can count on this CPU in between, so the difference is
 * exactly what the kernel counted for this listener, whatever other CPUs
 * do to it meanwhile.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "qwatch.h"

#define AF_INET		2
#define AF_INET6	10
#define TCP_CLOSE	7
#define TCP_LISTEN	10

/*
 * Far longer than any one segment's handler takes, even on an emulated
 * debug kernel whose vCPU the host stalls: a window open this long lost
 * its return (a missed kretprobe).
 */
#define WINDOW_MAX_NS	(10ULL * 1000 * 1000 * 1000)

/* Listeners whose counters are kept at once (a host has a few hundred). */
#define MAX_COUNTED_LISTENERS	16384

/*
 * Wake the reader only once this much is waiting (it also polls every
 * few ms): a wakeup per event costs the reader a poll() round per event.
 */
#define WAKEUP_BYTES	(64 * sizeof(struct qwatch_event))

/* Set by the reader before load. */
const volatile __u32 filter_netns = 0;
const volatile __u16 filter_lport = 0;
const volatile __u8 filter_protocol = 0;	/* enum qwatch_protocol, 0: every one */
/* inet_csk_reqsk_queue_hash_add() returns bool since 6.1.97 / 6.10. */
const volatile bool hash_add_returns_bool = false;
/* Whether anything shows latencies: their maps are most of a probe's cost. */
const volatile bool track_latency = true;
/*
 * Whether anything shows transitions (--events, --json, latencies): without
 * them the probes only count, and the reader only reads the counters and
 * the snapshot (the live table, --queues).
 */
const volatile bool stream_events = true;
/*
 * Whether the final ACK windows count the children their handler queued
 * (from its return value): when nothing probes the hashdance, which does
 * with events or latencies (it needs the request).
 */
const volatile bool children_from_windows = false;

/*
 * HSP's IP protocol number, 0 while the module is not loaded. Not a
 * constant: the module's "proto" parameter chooses it at insmod time, so
 * the reader copies the loaded module's value here whenever it (re)loads.
 */
__u32 hsp_protocol = 0;

/*
 * Listeners that stopped listening: a socket that listens again (or
 * another at its address) is another listener to the windows' cache.
 */
__u64 listener_stops = 0;

/* Which snapshot is being taken: the reader counts them (never 0). */
__u64 snapshot_generation = 0;
/*
 * Entries in listener_counters, and how many of them this snapshot's files
 * led to (the reader zeroes it): while the two are equal, no counted
 * listener is missing from the files, and the reader need not walk the
 * map's buckets for one (dump_counted_listeners).
 */
__u64 counted_listeners = 0;
__u64 snapshot_marked = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/*
 * struct qwatch_counters of every watched listener, created on its first
 * count and deleted when it stops listening. A plain hash with atomic
 * adds: a per-CPU one would cost its value times the number of CPUs for
 * every listener.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_COUNTED_LISTENERS);
	__type(key, __u64);
	__type(value, struct qwatch_counters);
} listener_counters SEC(".maps");

/*
 * struct qwatch_latencies of every watched listener, like its counters
 * (created on its first latency, deleted when it stops listening). The
 * reader sizes it to one entry when nothing shows latencies.
 */
#define MAX_TIMED_LISTENERS	4096

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TIMED_LISTENERS);
	__type(key, __u64);
	__type(value, struct qwatch_latencies);
} listener_latencies SEC(".maps");

/* Counts that found listener_counters (or listener_latencies) full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} uncounted SEC(".maps");

/*
 * When each request entered the SYN queue and each child the accept queue,
 * for the handshake and accept-wait latencies. LRU: entries of requests
 * and children that leave unseen (listener closed) age out.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} request_queued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} child_queued SEC(".maps");

/* The probes whose entry hands state to their return probe. */
enum pending_hook {
	HOOK_LISTEN,
	HOOK_HASH_ADD,
	HOOK_HASHDANCE,
	HOOK_REQ_DROP,
	HOOK_ACCEPT,
};

/*
 * Softirqs run on top of whatever task they interrupt, and every CPU's idle
 * task has pid 0, so the CPU is part of the key when there is no task.
 */
struct pending_key {
	__u64 pid_tgid;
	__u32 hook;
	__u32 cpu;
};

struct pending_call {
	struct sock *listener;
	struct request_sock *req;
	__u8 from_timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pending_key);
	__type(value, struct pending_call);
} pending SEC(".maps");

/*
 * This CPU's share of the SNMP counters a listener's counters come from,
 * in the order of struct qwatch_counters' kernel-counted fields.
 */
struct mib_sample {
	__u64 syncookies[3];	/* SyncookiesSent, SyncookiesRecv, SyncookiesFailed */
	__u64 listen[2];	/* ListenOverflows, ListenDrops */
	__u64 req_queue_full[2];	/* TCPReqQFullDoCookies, TCPReqQFullDrop */
	__u64 tfo_passive;	/* TCPFastOpenPassive */
	__u64 passive_opens;	/* TcpPassiveOpens */
};

/* The UAPI numbering (include/uapi/linux/snmp.h) the ranges rely on. */
_Static_assert(LINUX_MIB_SYNCOOKIESFAILED == LINUX_MIB_SYNCOOKIESSENT + 2, "snmp.h order");
_Static_assert(LINUX_MIB_LISTENDROPS == LINUX_MIB_LISTENOVERFLOWS + 1, "snmp.h order");
_Static_assert(LINUX_MIB_TCPREQQFULLDROP == LINUX_MIB_TCPREQQFULLDOCOOKIES + 1, "snmp.h order");

/*
 * One segment's handling for one listener on this CPU, and this CPU's
 * cursor into one namespace's counters. @depth: the handlers nest with the
 * same listener (tcp_v6_conn_request calls tcp_v4_conn_request, which calls
 * tcp_conn_request); only the outermost one opens and closes the window.
 *
 * The cursor (@net to @last) is the counters' sample at the last window
 * this CPU closed in @net, and where each window's delta starts: between
 * two windows nothing counts these counters on this CPU but what breaks
 * the cursor (clear @net), so the sample need not be read again when a
 * window opens, only when it closes. @net_cookie: a namespace freed and
 * another allocated at the same address is not taken for it.
 */
struct mib_window {
	const struct sock *listener;
	__u64 opened_ns;
	__u32 depth;
	__u8 stage;	/* enum qwatch_stage: a SYN or a final ACK */
	__u8 path;	/* enum qwatch_path of a child queued inside */
	/*
	 * The segment was queued (a request or a child) after all: a TFO
	 * child that could not be created falls back to a request.
	 */
	__u8 queued;
	/*
	 * A SYN's request was hashed into the SYN queue: nothing of these
	 * counters is counted then (every check that counts comes first, and
	 * a request is hashed only when it passed them all).
	 */
	__u8 hashed;
	__u8 protocol;	/* enum qwatch_protocol of @listener */
	__u8 mptcp;	/* @listener is an MPTCP socket's first subflow */
	__u64 opened_stops;	/* listener_stops when it opened */
	/*
	 * The listener whose window last moved the cursor, its protocol, and
	 * listener_stops when that window opened: while that number stands,
	 * it is still a listener in the cursor's namespace.
	 */
	const struct sock *last_listener;
	__u8 last_protocol;
	__u8 last_mptcp;
	__u64 last_stops;
	/* A SYN-queue length @last_listener's counters already hold as peak. */
	__u32 last_syn_peak;
	const struct net *net;
	__u64 net_cookie;
	const __u64 *linux_mib;	/* this CPU's struct linux_mib of @net */
	const __u64 *tcp_mib;	/* this CPU's struct tcp_mib of @net */
	struct mib_sample last;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mib_window);
} mib_windows SEC(".maps");

/* This CPU's __per_cpu_offset: BTF has no per-CPU tag on the MIB pointers. */
extern const unsigned long this_cpu_off __ksym;

static __always_inline struct pending_key pending_key(enum pending_hook hook)
{
	struct pending_key key = {
		.pid_tgid = bpf_get_current_pid_tgid(),
		.hook = hook,
	};

	if (!key.pid_tgid)
		key.cpu = bpf_get_smp_processor_id();
	return key;
}

/*
 * Field reads: fentry/fexit programs get BTF-typed pointers they may
 * dereference directly (plain loads); kprobes need a bpf_probe_read_kernel()
 * call per field, the larger share of their cost. @direct is a constant at
 * every call site, so each program keeps only its own kind of read.
 */
#define READ(direct, ptr, field) ((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))
#define READ_INTO(direct, dst, ptr, field)					\
	do {									\
		if (direct)							\
			__builtin_memcpy(dst, &(ptr)->field, sizeof(*(dst)));	\
		else								\
			BPF_CORE_READ_INTO(dst, ptr, field);			\
	} while (0)

static __always_inline __u32 sk_netns(const struct sock *sk, bool direct)
{
	if (direct)
		return sk->__sk_common.skc_net.net->ns.inum;
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/*
 * By the time a TCP listener is stopped, a port that bind() picked has been
 * released (skc_num is 0), so the port filter leaves close events to the
 * reader, which knows each listener's port.
 */
static __always_inline enum qwatch_protocol protocol_of(const struct sock *sk, bool direct)
{
	__u16 protocol = READ(direct, sk, sk_protocol);

	if (protocol == IPPROTO_TCP)
		return QWATCH_PROTO_TCP;
	if (hsp_protocol && protocol == hsp_protocol)
		return QWATCH_PROTO_HSP;
	return QWATCH_PROTO_NONE;
}

/* @sk's protocol if the filters select it, QWATCH_PROTO_NONE if not. */
static __always_inline enum qwatch_protocol selected_protocol(const struct sock *sk,
							      enum qwatch_event_type type,
							      bool direct)
{
	enum qwatch_protocol protocol = protocol_of(sk, direct);

	if (protocol == QWATCH_PROTO_NONE)
		return QWATCH_PROTO_NONE;
	if (filter_protocol && protocol != filter_protocol)
		return QWATCH_PROTO_NONE;
	if (filter_lport && type != QWATCH_CLOSE &&
	    READ(direct, sk, __sk_common.skc_num) != filter_lport)
		return QWATCH_PROTO_NONE;
	if (filter_netns && sk_netns(sk, direct) != filter_netns)
		return QWATCH_PROTO_NONE;
	return protocol;
}

static __always_inline bool listener_selected(const struct sock *sk, enum qwatch_event_type type,
					      bool direct)
{
	return selected_protocol(sk, type, direct) != QWATCH_PROTO_NONE;
}

static __always_inline void read_local(struct qwatch_event *e, const struct sock *sk, bool direct)
{
	e->family = READ(direct, sk, __sk_common.skc_family);
	e->lport = READ(direct, sk, __sk_common.skc_num);
	if (e->family == AF_INET6)
		READ_INTO(direct, &e->laddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	else
		READ_INTO(direct, (__u32 *)e->laddr, sk, __sk_common.skc_rcv_saddr);
}

/* @peer is a request sock or a child: both start with a sock_common. */
static __always_inline void read_peer(struct qwatch_event *e, const struct sock_common *peer,
				      bool direct)
{
	if (!peer)
		return;
	e->rport = bpf_ntohs(READ(direct, peer, skc_dport));
	if (READ(direct, peer, skc_family) == AF_INET6)
		READ_INTO(direct, &e->raddr, peer, skc_v6_daddr.in6_u.u6_addr8);
	else
		READ_INTO(direct, (__u32 *)e->raddr, peer, skc_daddr);
}

static __always_inline void read_queues(struct qwatch_event *e, const struct sock *sk, bool direct)
{
	/* Beyond struct sock: a BTF pointer to a sock cannot reach it directly. */
	const struct inet_connection_sock *icsk = (const void *)sk;

	e->listener = (__u64)sk;
	e->cookie = READ(direct, sk, __sk_common.skc_cookie.counter);
	e->protocol = protocol_of(sk, direct);
	e->netns = sk_netns(sk, direct);
	e->syn_queue = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	e->syn_young = BPF_CORE_READ(icsk, icsk_accept_queue.young.counter);
	e->accept_queue = READ(direct, sk, sk_ack_backlog);
	e->accept_max = READ(direct, sk, sk_max_ack_backlog);
	e->drops = READ(direct, sk, sk_drops.counter);
	read_local(e, sk, direct);
}

/* @sk's counters, created zero on its first count; NULL if no room. */
static __always_inline struct qwatch_counters *counters_of(const struct sock *sk)
{
	struct qwatch_counters *counters, zero = {};
	__u64 key = (__u64)sk;
	__u32 slot = 0;
	__u64 *missed;

	counters = bpf_map_lookup_elem(&listener_counters, &key);
	if (counters)
		return counters;
	/*
	 * Another CPU may create it first: then this one's insert fails.
	 * Counted before it exists (the reader may compare meanwhile: it
	 * then walks once for nothing, rather than miss it); whoever deletes
	 * an entry uncounts it.
	 */
	__sync_fetch_and_add(&counted_listeners, 1);
	if (bpf_map_update_elem(&listener_counters, &key, &zero, BPF_NOEXIST)) {
		__sync_fetch_and_add(&counted_listeners, -1);
	} else if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN) {
		/*
		 * It stopped listening since the caller looked, and its entry
		 * may be gone already: one made now would outlive it and be
		 * inherited by the next listener at this address.
		 */
		if (!bpf_map_delete_elem(&listener_counters, &key))
			__sync_fetch_and_add(&counted_listeners, -1);
		return NULL;
	}
	counters = bpf_map_lookup_elem(&listener_counters, &key);
	if (!counters) {
		missed = bpf_map_lookup_elem(&uncounted, &slot);
		if (missed)
			(*missed)++;
	}
	return counters;
}

#define COUNT(sk, field, n)							\
	do {									\
		struct qwatch_counters *__c = counters_of(sk);			\
										\
		if (__c)							\
			__sync_fetch_and_add(&__c->field, (n));			\
	} while (0)

/* One more of @field for @sk, if it is a watched listener. */
#define COUNT_ONE(sk, field, direct)						\
	do {									\
		if (watched(sk, QWATCH_SNAPSHOT, direct))			\
			COUNT(sk, field, 1);					\
	} while (0)

/*
 * @sk's protocol if it is a listener qwatch reports on (a close: was one),
 * QWATCH_PROTO_NONE if not.
 */
static __always_inline enum qwatch_protocol watched_protocol(const struct sock *sk,
							     enum qwatch_event_type type,
							     bool direct)
{
	enum qwatch_protocol protocol;

	if (!sk)
		return QWATCH_PROTO_NONE;
	protocol = selected_protocol(sk, type, direct);
	/* Requests of a closed listener expire later: it is gone already. */
	if (protocol == QWATCH_PROTO_NONE || type == QWATCH_CLOSE ||
	    READ(direct, sk, __sk_common.skc_state) == TCP_LISTEN)
		return protocol;
	return QWATCH_PROTO_NONE;
}

/* Whether @sk is a listener qwatch reports on (a close: was one). */
static __always_inline bool watched(const struct sock *sk, enum qwatch_event_type type, bool direct)
{
	return watched_protocol(sk, type, direct) != QWATCH_PROTO_NONE;
}

/* What an event says beyond its type and listener. */
struct transition {
	enum qwatch_event_type type;
	enum qwatch_stage stage;
	enum qwatch_cause cause;
	enum qwatch_path path;
	__u64 latency_ns;
};

/*
 * Queues one event (unless nothing streams events) and returns the
 * listener's counters, for the caller to count the transition in; NULL
 * when the listener is not watched (so nothing about it needs
 * remembering), for a close, or when the counters map is full. A lost
 * event (a full ring buffer) changes none of that. @direct: @sk is a BTF
 * pointer; @peer_direct: so is @peer.
 */
static __always_inline struct qwatch_counters *
emit_transition(const struct transition *t, const struct sock *sk, const void *peer, bool direct,
		bool peer_direct)
{
	struct qwatch_counters *counters = NULL;
	struct qwatch_event *e;
	__u32 zero = 0;
	__u64 *lost;

	if (!watched(sk, t->type, direct))
		return NULL;
	/* Its counters' entry also says it is alive (see dump_listeners). */
	if (t->type != QWATCH_CLOSE)
		counters = counters_of(sk);
	if (!stream_events)
		return counters;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&lost_events, &zero);
		if (lost)
			(*lost)++;
		return counters;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->type = t->type;
	e->stage = t->stage;
	e->cause = t->cause;
	e->path = t->path;
	e->latency_ns = t->latency_ns;
	if (t->type == QWATCH_LISTEN || t->type == QWATCH_ACCEPT)
		e->pid = bpf_get_current_pid_tgid() >> 32;
	read_queues(e, sk, direct);
	read_peer(e, peer, peer_direct);
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ?
			      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return counters;
}

static __always_inline struct qwatch_counters *
emit_timed(enum qwatch_event_type type, const struct sock *sk, const void *peer, __u64 latency_ns,
	   bool direct, bool peer_direct)
{
	struct transition t = { .type = type, .latency_ns = latency_ns };

	return emit_transition(&t, sk, peer, direct, peer_direct);
}

static __always_inline struct qwatch_counters *emit(enum qwatch_event_type type,
						    const struct sock *sk, const void *peer)
{
	return emit_timed(type, sk, peer, 0, false, false);
}

/* One more @field in @counters (emit_transition()'s), if any. */
#define ADD_ONE(counters, field)						\
	do {									\
		if (counters)							\
			__sync_fetch_and_add(&(counters)->field, 1);		\
	} while (0)

/*
 * This CPU's share of the cursor's namespace counters, into @s. A final
 * ACK's handler (@all false) can only move ListenOverflows, ListenDrops
 * and TcpPassiveOpens: the others are not read (@s keeps what it has),
 * which spares three reads per handshake.
 */
static __always_inline void read_mib(const struct mib_window *w, struct mib_sample *s, bool all)
{
	bpf_probe_read_kernel(s->listen, sizeof(s->listen), w->linux_mib + LINUX_MIB_LISTENOVERFLOWS);
	bpf_probe_read_kernel(&s->passive_opens, sizeof(s->passive_opens),
			      w->tcp_mib + TCP_MIB_PASSIVEOPENS);
	if (!all)
		return;
	bpf_probe_read_kernel(s->syncookies, sizeof(s->syncookies),
			      w->linux_mib + LINUX_MIB_SYNCOOKIESSENT);
	bpf_probe_read_kernel(s->req_queue_full, sizeof(s->req_queue_full),
			      w->linux_mib + LINUX_MIB_TCPREQQFULLDOCOOKIES);
	bpf_probe_read_kernel(&s->tfo_passive, sizeof(s->tfo_passive),
			      w->linux_mib + LINUX_MIB_TCPFASTOPENPASSIVE);
}

/*
 * Points @w's cursor at @sk's namespace and samples every counter there.
 * @direct: @sk is a BTF pointer.
 */
static __always_inline void cursor_reset(struct mib_window *w, const struct sock *sk, bool direct)
{
	const unsigned long *cpu_offset = bpf_this_cpu_ptr(&this_cpu_off);
	const struct net *net;

	net = direct ? sk->__sk_common.skc_net.net : BPF_CORE_READ(sk, __sk_common.skc_net.net);
	/* The per-CPU pointers cannot be read directly: BTF has no per-CPU tag on them. */
	w->linux_mib = (const void *)BPF_CORE_READ(net, mib.net_statistics) + *cpu_offset;
	w->tcp_mib = (const void *)BPF_CORE_READ(net, mib.tcp_statistics) + *cpu_offset;
	w->net = net;
	w->net_cookie = direct ? net->net_cookie : BPF_CORE_READ(net, net_cookie);
	read_mib(w, &w->last, true);
}

/* Whether @w's cursor is in @sk's namespace. */
static __always_inline bool cursor_in_netns_of(const struct mib_window *w, const struct sock *sk,
					       bool direct)
{
	const struct net *net;

	net = direct ? sk->__sk_common.skc_net.net : BPF_CORE_READ(sk, __sk_common.skc_net.net);
	if (!w->net || w->net != net)
		return false;
	return w->net_cookie == (direct ? net->net_cookie : BPF_CORE_READ(net, net_cookie));
}

/*
 * @sk's SYN-queue length into @syn_queue; returns whether TCP Fast Open is
 * on for it. A TCP listener's BTF pointer (@direct) reaches its
 * inet_connection_sock through bpf_skc_to_tcp_sock(), one helper call
 * where the other way takes two reads.
 */
static __always_inline bool syn_queue_of(const struct sock *sk, bool direct, __u32 *syn_queue)
{
	const struct inet_connection_sock *icsk = (const void *)sk;
	struct tcp_sock *tp;

	if (direct) {
		tp = bpf_skc_to_tcp_sock((void *)sk);
		if (tp) {
			*syn_queue = tp->inet_conn.icsk_accept_queue.qlen.counter;
			return tp->inet_conn.icsk_accept_queue.fastopenq.max_qlen;
		}
	}
	*syn_queue = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	return BPF_CORE_READ(icsk, icsk_accept_queue.fastopenq.max_qlen);
}

/* Whether @sk, a TCP listener, is an MPTCP socket's first subflow. */
static __always_inline bool listener_is_mptcp(const struct sock *sk)
{
	const struct tcp_sock *tp = (const void *)sk;

	return bpf_core_field_exists(tp->is_mptcp) && BPF_CORE_READ(tp, is_mptcp);
}

/*
 * @peak = max(@peak, @value), against other CPUs raising it too. Returns
 * whether @peak holds @value or more (false: it gave up after a few tries).
 */
static __always_inline bool raise_peak(__u64 *peak, __u64 value)
{
	__u64 seen;
	int tries;

	for (tries = 0; tries < 4; tries++) {
		seen = *peak;
		if (value <= seen || __sync_val_compare_and_swap(peak, seen, value) == seen)
			return true;
	}
	return false;
}

static __always_inline struct mib_window *this_cpu_window(void)
{
	__u32 slot = 0;

	return bpf_map_lookup_elem(&mib_windows, &slot);
}

/*
 * A handler of one segment for listener @sk starts. @path: what a child
 * queued before it returns is (a TFO child at a SYN, a syncookie child).
 */
static __always_inline void window_open(const struct sock *sk, enum qwatch_stage stage,
					enum qwatch_path path, bool direct)
{
	struct mib_window *w = this_cpu_window();
	enum qwatch_protocol protocol;
	__u64 now = 0, stops;
	bool mptcp;

	if (!w)
		return;
	/* Only a kretprobe's return can go unseen: an fexit's cannot. */
	if (!direct)
		now = bpf_ktime_get_ns();
	if (w->depth && w->listener == sk && (direct || now - w->opened_ns < WINDOW_MAX_NS)) {
		w->depth++;
		return;
	}
	stops = listener_stops;
	if (!w->depth && w->net && w->last_listener == sk && w->last_stops == stops) {
		/* The cursor's last listener, still listening: nothing to check. */
		protocol = w->last_protocol;
		mptcp = w->last_mptcp;
	} else {
		protocol = watched_protocol(sk, QWATCH_SNAPSHOT, direct);
		if (protocol == QWATCH_PROTO_NONE) {
			/* What it counts is no watched listener's. */
			w->depth = 0;
			w->net = NULL;
			return;
		}
		/*
		 * Another listener's window still open (a handler interrupted
		 * in process context), or one open too long for a segment's
		 * handler (its return went unseen): what it counted so far is
		 * not this one's.
		 */
		if (w->depth || !cursor_in_netns_of(w, sk, direct))
			cursor_reset(w, sk, direct);
		mptcp = protocol == QWATCH_PROTO_TCP && listener_is_mptcp(sk);
		w->last_syn_peak = 0;
	}
	/* 0 from fentry: a kprobe's window of the same listener then lost its return. */
	w->opened_ns = now;
	w->opened_stops = stops;
	w->listener = sk;
	w->stage = stage;
	w->path = path;
	w->queued = 0;
	w->hashed = 0;
	w->protocol = protocol;
	w->mptcp = mptcp;
	w->depth = 1;
}

/* @w's window moved the cursor: the next one for its listener may trust it. */
static __always_inline void cursor_moved(struct mib_window *w)
{
	w->last_listener = w->listener;
	w->last_protocol = w->protocol;
	w->last_mptcp = w->mptcp;
	w->last_stops = w->opened_stops;
}

/*
 * Whether @child, which the final ACK's handler @w was opened for returned,
 * entered the listener's accept queue. tcp_check_req() and hsp_check_req()
 * return the child inet_csk_complete_hashdance() queued, or NULL; but
 * tcp_check_req() also returns the listener itself for an ACK of the wrong
 * sequence number (its caller resets it), and under an MPTCP listener an
 * MP_JOIN subflow's child, which joins its connection instead (the
 * request's drop_req), and one being disposed of (closed already). @child
 * is a plain number in both attach modes.
 */
static __always_inline bool child_in_accept_queue(const struct mib_window *w,
						  const struct sock *child)
{
	const struct inet_connection_sock *icsk = (const void *)child;
	const struct tcp_sock *tp = (const void *)child;
	const struct mptcp_subflow_context *subflow;

	if (!child || child == w->listener || w->path != QWATCH_PATH_HANDSHAKE)
		return false;
	if (!w->mptcp)
		return true;
	if (BPF_CORE_READ(child, __sk_common.skc_state) == TCP_CLOSE)
		return false;
	if (!bpf_core_type_exists(struct mptcp_subflow_context) || !BPF_CORE_READ(tp, is_mptcp))
		return true;
	subflow = BPF_CORE_READ(icsk, icsk_ulp_data);
	return !subflow || !BPF_CORE_READ_BITFIELD_PROBED(subflow, mp_join);
}

/*
 * A final ACK's handler queued its child: of the counters only
 * TcpPassiveOpens moved, once for TCP's (tcp_create_openreq_child()) and
 * not for HSP's (it counts in its own MIB), so the cursor moves without a
 * read. Not for MPTCP's, whose subflow handling counts more.
 */
static __always_inline void window_end_queued(struct mib_window *w, const struct sock *sk,
					      bool direct)
{
	struct qwatch_counters *c;

	if (w->protocol == QWATCH_PROTO_TCP)
		w->last.passive_opens++;
	cursor_moved(w);
	/* Stopped listening meanwhile: counters_of() makes no entry. */
	c = counters_of(sk);
	if (!c)
		return;
	/* TCP's as TcpPassiveOpens counted it; HSP's, unless the hashdance probe counts them. */
	if (w->protocol == QWATCH_PROTO_TCP || children_from_windows)
		__sync_fetch_and_add(&c->handshakes, 1);
	if (children_from_windows)
		__sync_fetch_and_add(&c->children_queued, 1);
	raise_peak(&c->peak_accept_queue, READ(direct, sk, sk_ack_backlog));
}

/*
 * The handler of the segment @w was opened for returns: what the kernel
 * counted meanwhile on this CPU was counted for listener @sk (@direct: a
 * BTF pointer). @child: what a final ACK's handler returned.
 */
static __always_inline void window_end(struct mib_window *w, const struct sock *sk, bool direct,
				       const struct sock *child)
{
	/* Beyond struct sock: a BTF pointer to a sock cannot reach it directly. */
	const struct inet_connection_sock *icsk = (const void *)sk;
	struct transition drop = {};
	struct mib_sample start, now;
	struct qwatch_counters *c;
	__u64 overflows, drops, full_drops;
	__u32 syn_queue;
	bool queued;

	/*
	 * Its cursor was dropped meanwhile (else it is in @sk's namespace:
	 * only a window's opening moves it elsewhere, and that one's
	 * listener would have replaced @sk).
	 */
	if (!w->net)
		return;
	/*
	 * With TCP Fast Open on, a SYN may have tried a child first (counting
	 * TcpPassiveOpens or drops if it failed) and hashed a request after.
	 */
	if (w->hashed && !syn_queue_of(sk, direct, &syn_queue)) {
		/* The SYN queue grew: only its peak to raise, if it is a new one. */
		cursor_moved(w);
		if (syn_queue <= w->last_syn_peak)
			return;
		c = counters_of(sk);
		if (c && raise_peak(&c->peak_syn_queue, syn_queue))
			w->last_syn_peak = syn_queue;
		return;
	}
	queued = child_in_accept_queue(w, child);
	if (queued && !w->mptcp) {
		window_end_queued(w, sk, direct);
		return;
	}
	start = w->last;
	now = start;
	read_mib(w, &now, w->path != QWATCH_PATH_HANDSHAKE);
	w->last = now;
	cursor_moved(w);
	/* Stopped listening meanwhile: its counters are gone with it. */
	if (!watched(sk, QWATCH_SNAPSHOT, direct))
		return;
	overflows = now.listen[0] - start.listen[0];
	drops = now.listen[1] - start.listen[1];
	full_drops = now.req_queue_full[1] - start.req_queue_full[1];
	c = counters_of(sk);
	if (c) {
#define ADD_DELTA(field, value)							\
		do {								\
			__u64 __d = (value);					\
										\
			if (__d)						\
				__sync_fetch_and_add(&c->field, __d);		\
		} while (0)
		ADD_DELTA(syncookies_sent, now.syncookies[0] - start.syncookies[0]);
		ADD_DELTA(syncookies_recv, now.syncookies[1] - start.syncookies[1]);
		ADD_DELTA(syncookies_failed, now.syncookies[2] - start.syncookies[2]);
		ADD_DELTA(listen_overflows, overflows);
		ADD_DELTA(listen_drops, drops);
		ADD_DELTA(syn_queue_full_cookies,
			  now.req_queue_full[0] - start.req_queue_full[0]);
		ADD_DELTA(syn_queue_full_drops, full_drops);
		ADD_DELTA(tfo_children, now.tfo_passive - start.tfo_passive);
		ADD_DELTA(handshakes, now.passive_opens - start.passive_opens);
		if (children_from_windows && queued)
			ADD_DELTA(children_queued, 1);
#undef ADD_DELTA
		/*
		 * The queues grow inside the handlers windows open around,
		 * but for a request or child migrated to another listener of
		 * a reuseport group (net.ipv4.tcp_migrate_req=1): those are
		 * not seen here. Only a SYN's handler adds requests.
		 */
		if (w->stage == QWATCH_STAGE_SYN)
			raise_peak(&c->peak_syn_queue,
				   BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter));
		raise_peak(&c->peak_accept_queue, READ(direct, sk, sk_ack_backlog));
	}
	/* The segment was dropped: tell why, in the kernel's terms. */
	if ((!drops && !overflows) || w->queued || queued)
		return;
	drop.stage = w->stage;
	drop.type = w->stage == QWATCH_STAGE_SYN ? QWATCH_SYN_DROP : QWATCH_ACK_DROP;
	if (overflows) {
		drop.type = QWATCH_OVERFLOW;
		drop.cause = QWATCH_CAUSE_LISTEN_OVERFLOW;
	} else if (full_drops) {
		drop.cause = QWATCH_CAUSE_SYN_QUEUE_FULL;
	} else {
		drop.cause = QWATCH_CAUSE_LISTEN_DROP;
	}
	emit_transition(&drop, sk, NULL, false, false);
}

/*
 * A segment's handler returns. @sk: the listener it was called for (a BTF
 * pointer from fexit), or NULL from a kretprobe, which does not have it
 * (then the open window's). @child: what a final ACK's handler returned
 * (a plain number), NULL from the others.
 */
static __always_inline void window_close(const struct sock *sk, const struct sock *child)
{
	struct mib_window *w = this_cpu_window();

	if (!w)
		return;
	if (!w->depth || (sk && w->listener != sk)) {
		/*
		 * Its window was never open or another replaced it: what it
		 * counted since is nobody's (lost, not given to another).
		 */
		w->net = NULL;
		return;
	}
	if (--w->depth)
		return;
	/*
	 * Two copies: the verifier must see a BTF pointer where the reads
	 * are direct, and the window's plain number where they are not.
	 */
	if (sk)
		window_end(w, sk, true, child);
	else
		window_end(w, w->listener, false, child);
}

/* How long ago @key entered the queue @map times; forgets it. 0: unknown. */
static __always_inline __u64 time_in_queue(void *map, const void *key_ptr)
{
	__u64 key = (__u64)key_ptr;
	__u64 *queued, waited = 0;

	if (!track_latency)
		return 0;
	queued = bpf_map_lookup_elem(map, &key);
	if (queued) {
		waited = bpf_ktime_get_ns() - *queued;
		bpf_map_delete_elem(map, &key);
	}
	return waited;
}

/*
 * The histogram bucket of @us microseconds: floor(log2(@us)), 0 below 2,
 * the last bucket above. A loop whose every exit sets a constant: 6.1's
 * verifier, following a branchy log2 down a path no value can take, lost
 * the index's bounds (umin above umax) and refused the add.
 */
static __always_inline __u32 latency_slot(__u64 us)
{
	__u32 slot = 0;
	int bit;

	for (bit = 1; bit < QWATCH_LOG2_BUCKETS; bit++) {
		if (!(us >> bit))
			break;
		slot = bit;
	}
	return slot;
}

/* A new listener's latencies (too large for the stack). */
static const struct qwatch_latencies no_latencies;

/*
 * One latency of @sk's: the handshake's (SYN queued -> child created) or
 * the accept-queue wait's. 0: not measured (the start went unseen).
 */
static __always_inline void record_latency(const struct sock *sk, __u64 ns, bool accept_wait)
{
	struct qwatch_log2_histogram *histogram;
	struct qwatch_latencies *latencies;
	__u64 key = (__u64)sk, us = ns / 1000;
	__u32 zero = 0;
	__u64 *missed;

	if (!ns)
		return;
	latencies = bpf_map_lookup_elem(&listener_latencies, &key);
	if (!latencies) {
		/* Another CPU may create it first: then this one's insert fails. */
		if (!bpf_map_update_elem(&listener_latencies, &key, &no_latencies, BPF_NOEXIST) &&
		    BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN) {
			/* As in counters_of(): it must not outlive the listener. */
			bpf_map_delete_elem(&listener_latencies, &key);
			return;
		}
		latencies = bpf_map_lookup_elem(&listener_latencies, &key);
		if (!latencies) {
			missed = bpf_map_lookup_elem(&uncounted, &zero);
			if (missed)
				(*missed)++;
			return;
		}
	}
	histogram = accept_wait ? &latencies->accept_wait : &latencies->handshake;
	__sync_fetch_and_add(&histogram->buckets[latency_slot(us)], 1);
	__sync_fetch_and_add(&histogram->sum_ns, ns);
}

static __always_inline void queued_now(void *map, const void *key_ptr)
{
	__u64 key = (__u64)key_ptr, now;

	if (!track_latency)
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(map, &key, &now, BPF_ANY);
}

static __always_inline void remember(enum pending_hook hook, struct sock *listener,
				     struct request_sock *req, __u8 from_timer)
{
	struct pending_key key = pending_key(hook);
	struct pending_call call = {
		.listener = listener,
		.req = req,
		.from_timer = from_timer,
	};

	bpf_map_update_elem(&pending, &key, &call, BPF_ANY);
}

/* Returns the entry's state by value and forgets it. */
static __always_inline bool recall(enum pending_hook hook, struct pending_call *call)
{
	struct pending_key key = pending_key(hook);
	struct pending_call *found;

	found = bpf_map_lookup_elem(&pending, &key);
	if (!found)
		return false;
	*call = *found;
	bpf_map_delete_elem(&pending, &key);
	return call->listener != NULL;
}

static __always_inline void on_listen_return(int err)
{
	struct pending_call call;

	if (recall(HOOK_LISTEN, &call) && !err)
		emit(QWATCH_LISTEN, call.listener, NULL);
}

static __always_inline void on_listen_stop(struct sock *sk)
{
	__u64 key = (__u64)sk;

	__sync_fetch_and_add(&listener_stops, 1);
	emit(QWATCH_CLOSE, sk, NULL);
	if (!bpf_map_delete_elem(&listener_counters, &key))
		__sync_fetch_and_add(&counted_listeners, -1);
	if (track_latency)
		bpf_map_delete_elem(&listener_latencies, &key);
}

/*
 * Each transition has one handler below, called by a kprobe/kretprobe
 * pair or by an fentry/fexit twin (--attach): fexit sees the arguments and
 * the return value at once and needs no pending entry.
 */
static __always_inline void on_hash_add_done(struct sock *sk, struct request_sock *req, long ret,
					     bool direct)
{
	struct mib_window *w = this_cpu_window();

	if (hash_add_returns_bool && !(ret & 0xff))
		return;	/* a duplicate request was already hashed */
	if (w && w->depth && w->listener == sk)
		w->queued = w->hashed = 1;
	if (emit_timed(QWATCH_SYN_RECV, sk, req, 0, direct, direct))
		queued_now(&request_queued, req);
}

/*
 * Counting only: a request for the open window's listener is being hashed
 * (a duplicate's failure to hash counts nothing either).
 */
static __always_inline void on_hash_add_start(const struct sock *sk)
{
	struct mib_window *w = this_cpu_window();

	if (w && w->depth && w->listener == sk)
		w->hashed = 1;
}

static __always_inline void on_hashdance_done(const struct sock *sk, struct request_sock *req,
					       struct sock *child, bool direct)
{
	struct qwatch_counters *c;
	__u64 handshake_ns;

	if (!child)
		return;
	handshake_ns = req ? time_in_queue(&request_queued, req) : 0;
	c = emit_timed(QWATCH_ACK_COMPLETE, sk, child, handshake_ns, direct, direct);
	if (!c)
		return;
	record_latency(sk, handshake_ns, false);
	queued_now(&child_queued, child);
	ADD_ONE(c, children_queued);
	/* TCP's are counted where the kernel counts them (TcpPassiveOpens). */
	if (protocol_of(sk, direct) == QWATCH_PROTO_HSP)
		ADD_ONE(c, handshakes);
}

/*
 * inet_csk_reqsk_queue_add() queued @child outside the hashdance: for a
 * syncookie ACK or a TFO SYN. Its listener is the open window's (@sk, the
 * listener it was called for, is NULL from a kretprobe); calls inside the
 * hashdance (where a build did not inline it) are the hashdance's.
 */
static __always_inline void on_queue_add_done(const struct sock *sk, struct sock *child)
{
	struct mib_window *w = this_cpu_window();
	struct transition t = { .type = QWATCH_ACK_COMPLETE };
	struct qwatch_counters *c;

	if (!child || !w || !w->depth || w->path == QWATCH_PATH_HANDSHAKE ||
	    (sk && sk != w->listener))
		return;
	w->queued = 1;
	t.path = w->path;
	c = emit_transition(&t, w->listener, child, false, false);
	if (!c)
		return;
	queued_now(&child_queued, child);
	ADD_ONE(c, children_queued);
}

static __always_inline void on_req_drop_done(struct sock *sk, struct request_sock *req,
					     bool from_timer, long unlinked)
{
	struct qwatch_counters *c;

	/* Without events, only an expiry is news (it is counted). */
	if (!(unlinked & 0xff) || (!stream_events && !from_timer))
		return;
	time_in_queue(&request_queued, req);
	c = emit(from_timer ? QWATCH_EXPIRE : QWATCH_REQ_DROP, sk, req);
	if (from_timer)
		ADD_ONE(c, expired_requests);
}

/* @child is a plain number in both attach modes (see inet_csk_accept_exit). */
static __always_inline void on_accept_done(struct sock *sk, struct sock *child, bool direct)
{
	struct qwatch_counters *c;
	__u64 waited_ns;

	if (!child)
		return;
	waited_ns = time_in_queue(&child_queued, child);
	c = emit_timed(QWATCH_ACCEPT, sk, child, waited_ns, direct, false);
	if (!c)
		return;
	ADD_ONE(c, accepts);
	record_latency(sk, waited_ns, true);
}

static __always_inline void on_synack_retransmit(const struct sock *sk, const struct request_sock *req)
{
	struct qwatch_counters *c = emit(QWATCH_SYNACK_RETRANSMIT, sk, req);

	ADD_ONE(c, synack_retransmits);
}

/*
 * An ICMP error for a request sock: the one ListenDrops that is counted
 * outside a segment's handler, exactly when tcp_req_err() counts it.
 */
static __always_inline void on_req_err(const struct sock *req_sk, __u32 seq, bool abort)
{
	const struct tcp_request_sock *treq = (const void *)req_sk;
	const struct request_sock *req = (const void *)req_sk;
	struct mib_window *w = this_cpu_window();
	const struct sock *listener;

	if (!abort || seq != BPF_CORE_READ(treq, snt_isn))
		return;
	listener = BPF_CORE_READ(req, __req_common.skc_listener);
	COUNT_ONE(listener, listen_drops, false);
	/* Counted here: the next window on this CPU must not count it again. */
	if (w)
		w->net = NULL;
}

SEC("kprobe/inet_listen")
int BPF_KPROBE(inet_listen_entry, struct socket *sock)
{
	remember(HOOK_LISTEN, BPF_CORE_READ(sock, sk), NULL, 0);
	return 0;
}

SEC("kretprobe/inet_listen")
int BPF_KRETPROBE(inet_listen_return, int err)
{
	on_listen_return(err);
	return 0;
}

/* HSP (kmod/) has its own listen(), like DCCP. */
SEC("kprobe/hsp_listen")
int BPF_KPROBE(hsp_listen_entry, struct socket *sock)
{
	remember(HOOK_LISTEN, BPF_CORE_READ(sock, sk), NULL, 0);
	return 0;
}

SEC("kretprobe/hsp_listen")
int BPF_KRETPROBE(hsp_listen_return, int err)
{
	on_listen_return(err);
	return 0;
}

SEC("kprobe/inet_csk_listen_stop")
int BPF_KPROBE(inet_csk_listen_stop_entry, struct sock *sk)
{
	on_listen_stop(sk);
	return 0;
}

SEC("kprobe/inet_csk_reqsk_queue_hash_add")
int BPF_KPROBE(hash_add_entry, struct sock *sk, struct request_sock *req)
{
	remember(HOOK_HASH_ADD, sk, req, 0);
	return 0;
}

SEC("kprobe/inet_csk_reqsk_queue_hash_add")
int BPF_KPROBE(hash_add_entry_counting, struct sock *sk)
{
	on_hash_add_start(sk);
	return 0;
}

SEC("kretprobe/inet_csk_reqsk_queue_hash_add")
int BPF_KRETPROBE(hash_add_return, long ret)
{
	struct pending_call call;

	if (recall(HOOK_HASH_ADD, &call))
		on_hash_add_done(call.listener, call.req, ret, false);
	return 0;
}

/*
 * The segment handlers the counters' windows are opened around. SYNs:
 * the address families' conn_request and MPTCP's (non-unicast drops are
 * theirs), and tcp_conn_request; final ACKs: tcp_check_req; syncookie
 * ACKs: cookie_v4/v6_check. tcp_check_req() also runs for a TFO child,
 * which is not listening: no window opens for it.
 */
SEC("kprobe/tcp_conn_request")
int BPF_KPROBE(tcp_conn_request_entry, void *rsk_ops, void *af_ops, struct sock *sk)
{
	window_open(sk, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN, false);
	return 0;
}

SEC("kretprobe/tcp_conn_request")
int BPF_KRETPROBE(tcp_conn_request_return)
{
	window_close(NULL, NULL);
	return 0;
}

/*
 * The others take the listener first. A kretprobe does not have it: it
 * closes the window open on this CPU. A final ACK's handler returns the
 * child it queued (see child_in_accept_queue()).
 */
#define WINDOW_KPROBES(function, stage, path)					\
	SEC("kprobe/" #function)						\
	int BPF_KPROBE(function##_entry, struct sock *sk)			\
	{									\
		window_open(sk, stage, path, false);				\
		return 0;							\
	}									\
										\
	SEC("kretprobe/" #function)						\
	int BPF_KRETPROBE(function##_return, struct sock *child)		\
	{									\
		window_close(NULL, path == QWATCH_PATH_HANDSHAKE ? child : NULL);	\
		return 0;							\
	}

WINDOW_KPROBES(tcp_v4_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_KPROBES(tcp_v6_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_KPROBES(hsp_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_KPROBES(subflow_v4_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_KPROBES(subflow_v6_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_KPROBES(tcp_check_req, QWATCH_STAGE_ACK, QWATCH_PATH_HANDSHAKE)
WINDOW_KPROBES(hsp_check_req, QWATCH_STAGE_ACK, QWATCH_PATH_HANDSHAKE)
WINDOW_KPROBES(cookie_v4_check, QWATCH_STAGE_ACK, QWATCH_PATH_SYNCOOKIE)
WINDOW_KPROBES(cookie_v6_check, QWATCH_STAGE_ACK, QWATCH_PATH_SYNCOOKIE)

SEC("kretprobe/inet_csk_reqsk_queue_add")
int BPF_KRETPROBE(queue_add_return, struct sock *child)
{
	on_queue_add_done(NULL, child);
	return 0;
}

SEC("kprobe/tcp_req_err")
int BPF_KPROBE(tcp_req_err_entry, struct sock *req_sk, __u32 seq, bool abort)
{
	on_req_err(req_sk, seq, abort);
	return 0;
}

SEC("kprobe/inet_csk_complete_hashdance")
int BPF_KPROBE(hashdance_entry, struct sock *sk, struct sock *child, struct request_sock *req)
{
	remember(HOOK_HASHDANCE, sk, req, 0);
	return 0;
}

SEC("kretprobe/inet_csk_complete_hashdance")
int BPF_KRETPROBE(hashdance_return, struct sock *child)
{
	struct pending_call call;

	if (recall(HOOK_HASHDANCE, &call))
		on_hashdance_done(call.listener, call.req, child, false);
	return 0;
}

/*
 * Every way a request leaves the SYN queue other than completing: reset,
 * listener gone, and (from the timer) expiry after the last SYN-ACK.
 */
SEC("kprobe/__inet_csk_reqsk_queue_drop")
int BPF_KPROBE(req_drop_entry, struct sock *sk, struct request_sock *req, bool from_timer)
{
	if (!stream_events && !from_timer)
		return 0;
	remember(HOOK_REQ_DROP, sk, req, from_timer);
	return 0;
}

SEC("kretprobe/__inet_csk_reqsk_queue_drop")
int BPF_KRETPROBE(req_drop_return, long unlinked)
{
	struct pending_call call;

	if (recall(HOOK_REQ_DROP, &call))
		on_req_drop_done(call.listener, call.req, call.from_timer, unlinked);
	return 0;
}

/*
 * TCP's SYN-ACK retransmits. inet_rtx_syn_ack() itself cannot be probed for
 * this: the timer handler in the same file has it inlined.
 */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tcp_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	on_synack_retransmit(sk, req);
	return 0;
}

/* HSP's SYN-ACK retransmits: its request_sock_ops.rtx_syn_ack. */
SEC("kprobe/hsp_rtx_synack")
int BPF_KPROBE(hsp_rtx_synack_entry, const struct sock *sk, const struct request_sock *req)
{
	on_synack_retransmit(sk, req);
	return 0;
}

/*
 * kprobe mode. A kretprobe holds one of its few instances (max(10, 2 x
 * CPUs)) for every caller blocked inside inet_csk_accept(), so with more
 * callers blocked than that, returns go unseen. __inet_accept() runs right
 * after the dequeue, never sleeps, and has the listener and the child; the
 * kretprobe pair below is for kernels without it.
 */
SEC("kprobe/__inet_accept")
int BPF_KPROBE(inet_accept_graft, struct socket *sock, struct socket *newsock, struct sock *newsk)
{
	on_accept_done(BPF_CORE_READ(sock, sk), newsk, false);
	return 0;
}

SEC("kprobe/inet_csk_accept")
int BPF_KPROBE(inet_csk_accept_entry, struct sock *sk)
{
	remember(HOOK_ACCEPT, sk, NULL, 0);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(inet_csk_accept_return, struct sock *child)
{
	struct pending_call call;

	if (recall(HOOK_ACCEPT, &call))
		on_accept_done(call.listener, child, false);
	return 0;
}

/*
 * fentry/fexit twins of the kprobes on vmlinux functions (--attach fentry):
 * a BPF trampoline instead of an int3 trap per call. HSP's functions keep
 * their kprobes: the module has no BTF on 6.1 (its headers ship no
 * vmlinux), so fentry could not trace it there.
 */
SEC("fexit/inet_listen")
int BPF_PROG(inet_listen_exit, struct socket *sock, int backlog, int err)
{
	if (!err)
		emit(QWATCH_LISTEN, BPF_CORE_READ(sock, sk), NULL);
	return 0;
}

SEC("fentry/inet_csk_listen_stop")
int BPF_PROG(inet_csk_listen_stop_fentry, struct sock *sk)
{
	on_listen_stop(sk);
	return 0;
}

SEC("fentry/inet_csk_reqsk_queue_hash_add")
int BPF_PROG(hash_add_fentry_counting, struct sock *sk)
{
	on_hash_add_start(sk);
	return 0;
}

SEC("fexit/inet_csk_reqsk_queue_hash_add")
int BPF_PROG(hash_add_exit, struct sock *sk, struct request_sock *req, unsigned long timeout,
	     long ret)
{
	on_hash_add_done(sk, req, ret, true);
	return 0;
}

SEC("fentry/tcp_conn_request")
int BPF_PROG(tcp_conn_request_fentry, void *rsk_ops, void *af_ops, struct sock *sk)
{
	window_open(sk, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN, true);
	return 0;
}

SEC("fexit/tcp_conn_request")
int BPF_PROG(tcp_conn_request_exit, void *rsk_ops, void *af_ops, struct sock *sk)
{
	window_close(sk, NULL);
	return 0;
}

#define WINDOW_TRAMPOLINES(function, stage, path)				\
	SEC("fentry/" #function)						\
	int BPF_PROG(function##_fentry, struct sock *sk)			\
	{									\
		window_open(sk, stage, path, true);				\
		return 0;							\
	}									\
										\
	SEC("fexit/" #function)							\
	int BPF_PROG(function##_exit, struct sock *sk)				\
	{									\
		__u64 child = 0;						\
										\
		/* After 5 arguments (6 since 6.15): a plain number. */	\
		if (path == QWATCH_PATH_HANDSHAKE)				\
			bpf_get_func_ret(ctx, &child);				\
		window_close(sk, (const struct sock *)child);			\
		return 0;							\
	}

WINDOW_TRAMPOLINES(tcp_v4_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_TRAMPOLINES(tcp_v6_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_TRAMPOLINES(subflow_v4_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_TRAMPOLINES(subflow_v6_conn_request, QWATCH_STAGE_SYN, QWATCH_PATH_FASTOPEN)
WINDOW_TRAMPOLINES(tcp_check_req, QWATCH_STAGE_ACK, QWATCH_PATH_HANDSHAKE)
WINDOW_TRAMPOLINES(cookie_v4_check, QWATCH_STAGE_ACK, QWATCH_PATH_SYNCOOKIE)
WINDOW_TRAMPOLINES(cookie_v6_check, QWATCH_STAGE_ACK, QWATCH_PATH_SYNCOOKIE)

SEC("fexit/inet_csk_reqsk_queue_add")
int BPF_PROG(queue_add_exit, struct sock *sk, struct request_sock *req, struct sock *child,
	     struct sock *ret)
{
	on_queue_add_done(sk, ret);
	return 0;
}

SEC("fentry/tcp_req_err")
int BPF_PROG(tcp_req_err_fentry, struct sock *req_sk, __u32 seq, bool abort)
{
	on_req_err(req_sk, seq, abort);
	return 0;
}

SEC("fexit/inet_csk_complete_hashdance")
int BPF_PROG(hashdance_exit, struct sock *sk, struct sock *child, struct request_sock *req,
	     bool own_req, struct sock *ret)
{
	on_hashdance_done(sk, req, ret, true);
	return 0;
}

SEC("fexit/__inet_csk_reqsk_queue_drop")
int BPF_PROG(req_drop_exit, struct sock *sk, struct request_sock *req, bool from_timer,
	     bool unlinked)
{
	on_req_drop_done(sk, req, from_timer, unlinked);
	return 0;
}

/*
 * 6.10 folded (flags, err, kern) into one struct proto_accept_arg: two
 * arguments instead of four. bpf_get_func_ret() finds the return value
 * after either; it is a plain number, not a BTF pointer.
 */
SEC("fexit/inet_csk_accept")
int BPF_PROG(inet_csk_accept_exit, struct sock *sk)
{
	__u64 child = 0;

	bpf_get_func_ret(ctx, &child);
	on_accept_done(sk, (struct sock *)child, true);
	return 0;
}

/*
 * The snapshot: every listening socket some process holds, in any netns
 * (of the processes in qwatch's pid namespace). Walking files rather than
 * one protocol's hash tables finds TCP, HSP and MPTCP listeners alike and
 * names a process holding each. Returns the listener written (and in
 * @cookie the cookie written with it), or NULL.
 */
static __always_inline const struct sock *snapshot_file(struct bpf_iter__task_file *ctx,
							__u64 *cookie_written)
{
	struct task_struct *task = ctx->task;
	struct qwatch_counters *counters;
	struct file *file = ctx->file;
	const struct sock *listener;
	struct qwatch_event e = {};
	struct socket *sock;
	struct sock *sk;
	__u64 cookie;

	if (!task || !file)
		return NULL;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return NULL;
	sk = sock->sk;
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN)
		return NULL;
	/* The socket the user holds: its cookie is the one SO_COOKIE gives. */
	cookie = bpf_get_socket_cookie(sk);
	listener = sk;
	if (BPF_CORE_READ(sk, sk_protocol) == QWATCH_IPPROTO_MPTCP) {
		/*
		 * An MPTCP listener's queues are its first subflow's, a TCP
		 * listener in TCP's tables that no fd points to: the row is
		 * that one, as MPTCP's.
		 */
		if (!bpf_core_type_exists(struct mptcp_sock))
			return NULL;
		listener = BPF_CORE_READ((struct mptcp_sock *)sk, first);
		if (!listener || BPF_CORE_READ(listener, __sk_common.skc_state) != TCP_LISTEN)
			return NULL;
		e.mptcp = 1;
	}
	if (!listener_selected(listener, QWATCH_SNAPSHOT, false))
		return NULL;
	e.family = BPF_CORE_READ(listener, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return NULL;
	e.ts_ns = bpf_ktime_get_ns();
	e.type = QWATCH_SNAPSHOT;
	e.pid = BPF_CORE_READ(task, tgid);
	/*
	 * Its counters' entry, deleted when it stops listening, tells the
	 * reader that a listener no process holds any longer (in flight in
	 * an SCM_RIGHTS message, kernel-owned) is still there; found here,
	 * dump_counted_listeners need not write it again.
	 */
	counters = counters_of(listener);
	if (counters) {
		e.children_queued = counters->children_queued;
		e.accepts = counters->accepts;
		if (counters->snapshot_seen != snapshot_generation) {
			counters->snapshot_seen = snapshot_generation;
			/* The reader's read() runs the iterator: one thread. */
			snapshot_marked++;
		}
	}
	read_queues(&e, listener, false);
	e.cookie = cookie;
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	*cookie_written = cookie;
	return listener;
}

/*
 * The listeners the probes counted that no file led to: kernel-owned ones,
 * those in flight in an SCM_RIGHTS message or held only outside qwatch's
 * pid namespace. Each is written without a process (pid 0) and without a
 * cookie unless something gave it one. The map's keys are listeners'
 * addresses, deleted when they stop listening; a listener is freed an RCU
 * grace period after that (SOCK_RCU_FREE), and this runs under RCU: the
 * reads of one stopping meanwhile are of a socket still there.
 */
SEC("iter/bpf_map_elem")
int dump_counted_listeners(struct bpf_iter__bpf_map_elem *ctx)
{
	const struct qwatch_counters *counters = ctx->value;
	struct qwatch_event e = {};
	const struct sock *sk;
	__u64 *key = ctx->key;

	if (!key || !counters || counters->snapshot_seen == snapshot_generation)
		return 0;
	sk = (const struct sock *)*key;
	if (!watched(sk, QWATCH_SNAPSHOT, false))
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.type = QWATCH_SNAPSHOT;
	e.children_queued = counters->children_queued;
	e.accepts = counters->accepts;
	read_queues(&e, sk, false);
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

SEC("iter/task_file")
int dump_listeners(struct bpf_iter__task_file *ctx)
{
	__u64 cookie;

	snapshot_file(ctx, &cookie);
	return 0;
}

/*
 * --queues: the snapshot and, read from the kernel's own structures when
 * the reader asks, which requests and children each listener holds. Nothing
 * is kept per packet. The reader sets the three globals below before each
 * dump and reads the records from queue_entries after it.
 */
__u32 dump_generation = 0;	/* a new number for each dump */
__u32 dump_table_count = 0;	/* ehash tables found so far (dump_tables) */
__u64 dump_lost = 0;		/* records queue_entries had no room for */
__u64 dump_tables[QWATCH_DUMP_TABLES];
/* Per table: the SYN-queue lengths of its dumped listeners, summed. */
__u64 dump_table_requests[QWATCH_DUMP_TABLES];
/* The dump whose tables were walked: the final call may come twice. */
__u32 dump_walked_generation = 0;
/* The dump dumped_listeners was emptied for. */
__u32 dump_cleared_generation = 0;
/* Of QWATCH_DUMP_BUCKETS_MAX, the buckets this dump may still walk. */
__u32 dump_buckets_left = 0;

/* Ticks per second, for the jiffies times; 0 (unknown) without a config. */
extern int CONFIG_HZ __kconfig __weak;

/* Sized by the reader: 4 MiB with --queues, a page without. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} queue_entries SEC(".maps");

/*
 * The listeners of the current dump (value: dump_generation), by struct
 * sock address: a listener several files hold is walked once, and a
 * request sock found in ehash is kept when its rsk_listener is here.
 * Not an LRU map, which may evict an entry of this very dump (it frees per
 * CPU): emptied as each dump starts, and a listener that finds it full is
 * dumped without its requests and says so.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_COUNTED_LISTENERS);
	__type(key, __u64);
	__type(value, __u32);
} dumped_listeners SEC(".maps");

#define TCP_NEW_SYN_RECV_STATE	12

static __always_inline struct qwatch_queue_entry *entry_reserve(__u8 type)
{
	struct qwatch_queue_entry *entry;

	entry = bpf_ringbuf_reserve(&queue_entries, sizeof(*entry), 0);
	if (!entry) {
		__sync_fetch_and_add(&dump_lost, 1);
		return NULL;
	}
	__builtin_memset(entry, 0, sizeof(*entry));
	entry->type = type;
	return entry;
}

static __always_inline void entry_submit(struct qwatch_queue_entry *entry)
{
	/* The reader drains it right after the dump: no wakeup. */
	bpf_ringbuf_submit(entry, BPF_RB_NO_WAKEUP);
}

/* @jiffies ticks in microseconds; false if the tick rate is unknown. */
static __always_inline bool jiffies_to_us(__u64 jiffies, __u64 *us)
{
	__u64 hz = CONFIG_HZ > 0 ? CONFIG_HZ : 0;

	if (!hz)
		return false;
	*us = jiffies * 1000000 / hz;
	return true;
}

/* The peer of a request sock or a child (both start with a sock_common). */
static __always_inline void entry_peer(struct qwatch_queue_entry *entry,
				       const struct sock_common *peer)
{
	entry->family = BPF_CORE_READ(peer, skc_family);
	entry->rport = bpf_ntohs(BPF_CORE_READ(peer, skc_dport));
	if (entry->family == AF_INET6)
		BPF_CORE_READ_INTO(&entry->raddr, peer, skc_v6_daddr.in6_u.u6_addr8);
	else
		BPF_CORE_READ_INTO((__u32 *)entry->raddr, peer, skc_daddr);
}

/*
 * The table a listener's request socks are hashed in, as the kernel's
 * tcp_or_dccp_get_hashinfo() finds it: the protocol's own (HSP's, DCCP's)
 * or else its netns' TCP table (per netns since 6.1: net.ipv4.tcp_death_row
 * .hashinfo, the global tcp_hashinfo unless tcp_child_ehash_entries gave
 * the netns its own).
 */
static __always_inline __u64 listener_table(const struct sock *listener)
{
	struct inet_hashinfo *table;

	table = BPF_CORE_READ(listener, __sk_common.skc_prot, h.hashinfo);
	if (!table)
		table = BPF_CORE_READ(listener, __sk_common.skc_net.net,
				      ipv4.tcp_death_row.hashinfo);
	return (__u64)table;
}

/*
 * Adds @table to those the final call walks, with @requests more request
 * socks to look for there; false if there is no room.
 */
static __always_inline bool table_add(__u64 table, __u32 requests)
{
	__u32 count = dump_table_count;

	for (__u32 i = 0; i < QWATCH_DUMP_TABLES; i++) {
		if (i >= count)
			break;
		if (dump_tables[i] == table) {
			dump_table_requests[i] += requests;
			return true;
		}
	}
	if (count >= QWATCH_DUMP_TABLES)
		return false;
	dump_tables[count] = table;
	dump_table_requests[count] = requests;
	dump_table_count = count + 1;
	return true;
}

static long forget_listener(struct bpf_map *map, const __u64 *key, __u32 *generation,
			    void *ctx)
{
	bpf_map_delete_elem(map, key);
	return 0;
}

/* At a dump's first call: the last dump's listeners are not this one's. */
static __always_inline void dump_start(void)
{
	if (dump_cleared_generation == dump_generation)
		return;
	dump_cleared_generation = dump_generation;
	bpf_for_each_map_elem(&dumped_listeners, forget_listener, NULL, 0);
}

struct accept_walk {
	const struct request_sock *req;	/* the next one */
	__u64 listener;
	__u64 net;			/* the listener's netns (struct net address) */
	__u32 position;
	__u16 lport;			/* the listener's port, host order */
	__u8 protocol;			/* enum qwatch_protocol */
};

/*
 * One child of an accept queue, at @position from its head. A global
 * function: the verifier checks it once, not at every step of every walk
 * (its arguments are plain numbers; every read is a probe read).
 */
__noinline int queue_child(__u64 child_addr, __u64 listener, __u64 position, __u32 protocol)
{
	const struct sock *child = (const void *)child_addr;
	const struct inet_connection_sock *icsk = (const void *)child;
	const struct tcp_sock *tp = (const void *)child;
	struct qwatch_queue_entry *entry;
	__u32 stamp, rx;
	__u64 us;

	if (!child)
		return 0;
	entry = entry_reserve(QWATCH_QUEUE_ACCEPT);
	if (!entry)
		return 0;
	entry->listener = listener;
	entry->sock = child_addr;
	entry->order = position;
	entry_peer(entry, &child->__sk_common);
	/*
	 * When the handshake completed, in jiffies: TCP's lsndtime (set when
	 * the child is created and again as it turns ESTABLISHED; it moves
	 * only when data is sent, which a child nobody accepted does not
	 * do), HSP's icsk_ack.lrcvtime (set when its child is created; HSP
	 * receives no data to move it).
	 */
	if (protocol == QWATCH_PROTO_TCP)
		stamp = BPF_CORE_READ(tp, lsndtime);
	else
		stamp = BPF_CORE_READ(icsk, icsk_ack.lrcvtime);
	if (stamp && jiffies_to_us((__u32)((__u32)bpf_jiffies64() - stamp), &us)) {
		entry->age_us = us;
		entry->flags |= QWATCH_ENTRY_AGE;
	}
	if (protocol == QWATCH_PROTO_TCP) {
		/* What ss shows as Recv-Q: received, not read. */
		rx = BPF_CORE_READ(tp, rcv_nxt) - BPF_CORE_READ(tp, copied_seq);
		entry->rx_bytes = (__s32)rx > 0 ? rx : 0;
		entry->flags |= QWATCH_ENTRY_RX;
	}
	entry_submit(entry);
	return 0;
}

/*
 * Whether @req, met in @w's accept queue, is still one of its entries. A
 * request accept() took and freed meanwhile stays a request sock (its slab
 * is type-safe under RCU) but may have been reused: for another listener,
 * or as a new request without a child yet. A queued request names its
 * listener, except one a syncookie ACK made (allocated without one,
 * cookie_tcp_reqsk_alloc()): its child's port and netns tell then.
 */
static __always_inline bool accept_entry_current(const struct accept_walk *w,
						 const struct request_sock *req,
						 const struct sock *child)
{
	__u64 listener = (__u64)BPF_CORE_READ(req, __req_common.skc_listener);

	if (!child)
		return false;
	if (listener)
		return listener == w->listener;
	return BPF_CORE_READ(child, __sk_common.skc_num) == w->lport &&
	       (__u64)BPF_CORE_READ(child, __sk_common.skc_net.net) == w->net;
}

/*
 * One step of an accept queue: icsk_accept_queue.rskq_accept_head, then
 * each request's dl_next, as inet_csk_accept() takes them; req->sk is the
 * child. Read without the queue's lock (a BPF program cannot take it):
 * every read is a probe read, and the walk is bounded. It stops, not whole
 * (w->req stays set), at a request that is no longer an entry.
 */
static long accept_walk_one(__u32 index, void *ctx)
{
	struct accept_walk *w = ctx;
	const struct request_sock *req = w->req;
	const struct sock *child;

	if (!req)
		return 1;
	child = BPF_CORE_READ(req, sk);
	if (!accept_entry_current(w, req, child))
		return 1;
	queue_child((__u64)child, w->listener, w->position, w->protocol);
	w->position++;
	w->req = BPF_CORE_READ(req, dl_next);
	return 0;
}

/*
 * A listener's accept queue, head first, once per dump; notes the ehash
 * table its request socks are in for the final call. @cookie: the one its
 * snapshot record has.
 */
static __always_inline void dump_listener(const struct sock *listener, __u64 cookie)
{
	const struct inet_connection_sock *icsk = (const void *)listener;
	struct accept_walk w = {};
	struct qwatch_queue_entry *entry;
	__u32 generation = dump_generation, *seen;
	__u64 key = (__u64)listener, table = 0;
	__u32 bound, requests;

	seen = bpf_map_lookup_elem(&dumped_listeners, &key);
	if (seen && *seen == generation)
		return;
	/*
	 * Its requests are looked for only if the final call can tell them
	 * from others' (a full map, or a full table list: table 0 says so).
	 */
	if (!bpf_map_update_elem(&dumped_listeners, &key, &generation, BPF_ANY)) {
		requests = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
		table = listener_table(listener);
		if (table && !table_add(table, requests))
			table = 0;
	}

	w.req = BPF_CORE_READ(icsk, icsk_accept_queue.rskq_accept_head);
	w.listener = key;
	w.net = (__u64)BPF_CORE_READ(listener, __sk_common.skc_net.net);
	w.lport = BPF_CORE_READ(listener, __sk_common.skc_num);
	w.protocol = protocol_of(listener, false);
	/* The queue holds at most backlog + 1 (sk_acceptq_is_full() is ">"). */
	bound = BPF_CORE_READ(listener, sk_max_ack_backlog) + 1;
	if (bound > QWATCH_ACCEPT_WALK_MAX || bound == 0)
		bound = QWATCH_ACCEPT_WALK_MAX;
	bpf_loop(bound, accept_walk_one, &w, 0);

	entry = entry_reserve(QWATCH_QUEUE_LISTENER);
	if (!entry)
		return;
	entry->listener = key;
	entry->cookie = cookie;
	entry->table = table;
	entry->order = w.position;
	if (!w.req)
		entry->flags |= QWATCH_ENTRY_COMPLETE;
	entry_submit(entry);
}

struct table_walk {
	__u64 table;
	const void *buckets;	/* inet_hashinfo.ehash */
	__u64 bucket_size;
	__u8 complete;
};

/*
 * A request sock of a dumped listener: one SYN-queue entry. Global, as
 * queue_child().
 */
__noinline int queue_request(__u64 req_addr, __u64 listener, __u64 table)
{
	const struct request_sock *req = (const void *)req_addr;
	const struct tcp_request_sock *treq = (const void *)req;
	struct qwatch_queue_entry *entry;
	__u64 snt_synack, expires, us;
	__u64 now_us, jiffies;
	__s64 ticks;

	if (!req)
		return 0;
	entry = entry_reserve(QWATCH_QUEUE_SYN);
	if (!entry)
		return 0;
	entry->listener = listener;
	entry->sock = req_addr;
	entry->table = table;
	entry_peer(entry, &req->__req_common);
	entry->synack_retransmits = BPF_CORE_READ(req, num_retrans);
	entry->timeouts = BPF_CORE_READ_BITFIELD_PROBED(req, num_timeout);
	/* What the queue's "young" counts: requests whose timer never ran. */
	if (!entry->timeouts)
		entry->flags |= QWATCH_ENTRY_YOUNG;
	/*
	 * The first SYN-ACK's time, tcp_clock_us() (CLOCK_MONOTONIC, as
	 * bpf_ktime_get_ns()): TCP's and HSP's (which sets it as TCP does)
	 * are at the same place, HSP's request having TCP's layout.
	 */
	snt_synack = BPF_CORE_READ(treq, snt_synack);
	entry->order = snt_synack;
	/* Now, for this request: a big table's walk takes a while. */
	now_us = bpf_ktime_get_ns() / 1000;
	jiffies = bpf_jiffies64();
	if (snt_synack && now_us >= snt_synack) {
		entry->age_us = now_us - snt_synack;
		entry->flags |= QWATCH_ENTRY_AGE;
	}
	/* Until the request timer's next run: retransmit or expiry. */
	expires = BPF_CORE_READ(req, rsk_timer.expires);
	ticks = (__s64)(expires - jiffies);
	/* Unsigned division only: BPF on 6.1 has no signed one. */
	if (jiffies_to_us(ticks < 0 ? -ticks : ticks, &us)) {
		entry->timer_us = ticks < 0 ? -(__s64)us : (__s64)us;
		entry->flags |= QWATCH_ENTRY_TIMER;
	}
	entry_submit(entry);
	return 0;
}

enum chain_walk {
	CHAIN_WHOLE,		/* ended on its own bucket's nulls marker */
	CHAIN_TOO_LONG,		/* longer than QWATCH_BUCKET_WALK_MAX */
	CHAIN_MOVED,		/* ended on another bucket's marker */
};

/*
 * The sockets of ehash bucket @bucket's chain from @node, at most
 * QWATCH_BUCKET_WALK_MAX: the requests of this dump's listeners are
 * queued. Returns an enum chain_walk. The chain is RCU-protected and its
 * socks are SLAB_TYPESAFE_BY_RCU: a socket freed and reused during the
 * walk takes it to another chain, whose end marker (each bucket's nulls
 * value is its index) tells; the caller walks the bucket again, as the
 * kernel's own lookups do (only sockets of a dumped listener in state
 * NEW_SYN_RECV are listed, and the reader drops what it got twice).
 */
__noinline int queue_chain(__u64 node_addr, __u64 bucket, __u64 table)
{
	const struct hlist_nulls_node *node = (const void *)node_addr;
	__u32 generation = dump_generation, *seen;
	const struct sock_common *skc;
	__u64 offset, listener;

	offset = bpf_core_field_offset(struct sock_common, skc_nulls_node);
	for (int n = 0; n < QWATCH_BUCKET_WALK_MAX; n++) {
		if ((unsigned long)node & 1)
			break;	/* the nulls marker: the chain's end */
		skc = (const void *)node - offset;
		if (BPF_CORE_READ(skc, skc_state) == TCP_NEW_SYN_RECV_STATE) {
			listener = (__u64)BPF_CORE_READ(skc, skc_listener);
			seen = bpf_map_lookup_elem(&dumped_listeners, &listener);
			if (seen && *seen == generation)
				queue_request((__u64)skc, listener, table);
		}
		node = BPF_CORE_READ(node, next);
	}
	if (!((unsigned long)node & 1))
		return CHAIN_TOO_LONG;
	return ((unsigned long)node >> 1) == bucket ? CHAIN_WHOLE : CHAIN_MOVED;
}

static long table_walk_bucket(__u32 index, void *ctx)
{
	const void *head;
	struct table_walk *w = ctx;
	const struct hlist_nulls_node *node;
	int walk = CHAIN_MOVED;

	head = w->buckets + (__u64)index * w->bucket_size;
	for (int try = 0; try < QWATCH_BUCKET_TRIES && walk == CHAIN_MOVED; try++) {
		if (bpf_probe_read_kernel(&node, sizeof(node), head)) {
			w->complete = 0;
			return 0;
		}
		walk = queue_chain((__u64)node, index, w->table);
	}
	if (walk != CHAIN_WHOLE)
		w->complete = 0;
	return 0;
}

/*
 * Table @i of dump_tables, once per dump: walked unless none of its dumped
 * listeners had a request when dumped, within what is left of the dump's
 * QWATCH_DUMP_BUCKETS_MAX buckets (so that a huge table, from
 * tcp_child_ehash_entries, cannot make each screen slow: a table past that
 * is not whole), then its TABLE record. Global, as queue_child(): checked
 * once, not in each turn of dump_tables_now()'s loop, whose paths 6.1's
 * verifier cannot prune across a call (it gave up at a million).
 */
__noinline int dump_table(__u32 i)
{
	const struct inet_hashinfo *table;
	struct qwatch_queue_entry *entry;
	struct table_walk w = {};
	__u32 buckets = 0, left;

	if (i >= QWATCH_DUMP_TABLES)
		return 0;
	table = (const void *)dump_tables[i];
	w.table = (__u64)table;
	w.buckets = BPF_CORE_READ(table, ehash);
	w.complete = w.buckets != NULL;
	if (w.buckets && dump_table_requests[i]) {
		buckets = BPF_CORE_READ(table, ehash_mask) + 1;
		left = dump_buckets_left;
		if (buckets > left) {
			buckets = left;
			w.complete = 0;
		}
		dump_buckets_left = left - buckets;
		w.bucket_size = bpf_core_type_size(struct inet_ehash_bucket);
		if (buckets)
			bpf_loop(buckets, table_walk_bucket, &w, 0);
	}
	entry = entry_reserve(QWATCH_QUEUE_TABLE);
	if (!entry)
		return 0;
	entry->table = w.table;
	entry->order = buckets;
	if (w.complete)
		entry->flags |= QWATCH_ENTRY_COMPLETE;
	entry_submit(entry);
	return 0;
}

/* The final call: each table the dumped listeners use, once. */
static __always_inline void dump_tables_now(void)
{
	__u32 count = dump_table_count;

	if (dump_walked_generation == dump_generation)
		return;
	dump_walked_generation = dump_generation;
	dump_buckets_left = QWATCH_DUMP_BUCKETS_MAX;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < QWATCH_DUMP_TABLES; i++) {
		if (i >= count)
			break;
		dump_table(i);
	}
}

SEC("iter/task_file")
int dump_queues(struct bpf_iter__task_file *ctx)
{
	const struct sock *listener;
	__u64 cookie;

	dump_start();
	/* After the last file, the iterator calls once more without one. */
	if (!ctx->task && !ctx->file) {
		dump_tables_now();
		return 0;
	}
	listener = snapshot_file(ctx, &cookie);
	if (listener)
		dump_listener(listener, cookie);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
