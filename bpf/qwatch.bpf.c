// SPDX-License-Identifier: GPL-2.0
/*
 * qwatch: listen-queue transitions of every inet_connection_sock listener.
 *
 * The hooks sit on the generic inet_csk layer wherever it exists, so TCP and
 * HSP (kmod/) are seen the same way; tcp_check_req and tcp_conn_request add
 * TCP's drop decisions. Every event carries the listener's queue values read
 * after the transition (see struct qwatch_event).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "qwatch.h"

#define AF_INET		2
#define AF_INET6	10
#define TCP_LISTEN	10

/*
 * Wake the reader only once this much is waiting (it also polls every
 * few ms): a wakeup per event costs the reader a poll() round per event.
 */
#define WAKEUP_BYTES	(64 * sizeof(struct qwatch_event))

/* Set by the reader before load. */
const volatile __u32 filter_netns = 0;
const volatile __u16 filter_lport = 0;
const volatile __u8 filter_protocol = 0;	/* 0: every protocol */
/* inet_csk_reqsk_queue_hash_add() returns bool since 6.1.97 / 6.10. */
const volatile bool hash_add_returns_bool = false;
/* Whether anything shows latencies: their maps are most of a probe's cost. */
const volatile bool track_latency = true;

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

/*
 * Entry-to-return state of conn_request and check_req: both run in softirq
 * or with BH disabled, so they never nest on a CPU and one per-CPU slot
 * each will do (much cheaper than the hash map the others need).
 */
enum softirq_slot {
	SLOT_CONN_REQUEST,
	SLOT_CHECK_REQ,
	SOFTIRQ_SLOTS,
};

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
	__u32 drops;
	__u8 accept_full;
	__u8 from_timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pending_key);
	__type(value, struct pending_call);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOFTIRQ_SLOTS);
	__type(key, __u32);
	__type(value, struct pending_call);
} softirq_pending SEC(".maps");

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

static __always_inline bool accept_queue_full(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_ack_backlog) > BPF_CORE_READ(sk, sk_max_ack_backlog);
}

/*
 * By the time a TCP listener is stopped, a port that bind() picked has been
 * released (skc_num is 0), so the port filter leaves close events to the
 * reader, which knows each listener's port.
 */
static __always_inline bool listener_selected(const struct sock *sk, enum qwatch_event_type type,
					      bool direct)
{
	__u8 protocol = READ(direct, sk, sk_protocol);

	if (protocol != IPPROTO_TCP && protocol != QWATCH_IPPROTO_HSP)
		return false;
	if (filter_protocol && protocol != filter_protocol)
		return false;
	if (filter_lport && type != QWATCH_CLOSE &&
	    READ(direct, sk, __sk_common.skc_num) != filter_lport)
		return false;
	if (filter_netns && sk_netns(sk, direct) != filter_netns)
		return false;
	return true;
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
	e->protocol = READ(direct, sk, sk_protocol);
	e->netns = sk_netns(sk, direct);
	e->syn_queue = BPF_CORE_READ(icsk, icsk_accept_queue.qlen.counter);
	e->syn_young = BPF_CORE_READ(icsk, icsk_accept_queue.young.counter);
	e->accept_queue = READ(direct, sk, sk_ack_backlog);
	e->accept_max = READ(direct, sk, sk_max_ack_backlog);
	e->drops = READ(direct, sk, sk_drops.counter);
	read_local(e, sk, direct);
}

/*
 * Queues one event; returns false when the listener is not watched (so
 * nothing about it needs remembering), true otherwise, even if the event
 * was lost to a full ring buffer. @direct: @sk is a BTF pointer;
 * @peer_direct: so is @peer.
 */
static __always_inline bool emit_timed(enum qwatch_event_type type, const struct sock *sk,
				       const void *peer, enum qwatch_stage stage, __u64 latency_ns,
				       bool direct, bool peer_direct)
{
	struct qwatch_event *e;
	__u32 zero = 0;
	__u64 *lost;

	if (!sk || !listener_selected(sk, type, direct))
		return false;
	/* Requests of a closed listener expire later: it is gone already. */
	if (type != QWATCH_CLOSE && READ(direct, sk, __sk_common.skc_state) != TCP_LISTEN)
		return false;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&lost_events, &zero);
		if (lost)
			(*lost)++;
		return true;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->type = type;
	e->stage = stage;
	e->latency_ns = latency_ns;
	if (type == QWATCH_LISTEN || type == QWATCH_ACCEPT)
		e->pid = bpf_get_current_pid_tgid() >> 32;
	read_queues(e, sk, direct);
	read_peer(e, peer, peer_direct);
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ?
			      BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	return true;
}

static __always_inline bool emit(enum qwatch_event_type type, const struct sock *sk,
				 const void *peer, enum qwatch_stage stage)
{
	return emit_timed(type, sk, peer, stage, 0, false, false);
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

	if (listener) {
		call.drops = BPF_CORE_READ(listener, sk_drops.counter);
		call.accept_full = accept_queue_full(listener);
	}
	bpf_map_update_elem(&pending, &key, &call, BPF_ANY);
}

static __always_inline void remember_softirq(enum softirq_slot slot, struct sock *listener,
					     struct request_sock *req)
{
	__u32 key = slot;
	struct pending_call *call = bpf_map_lookup_elem(&softirq_pending, &key);

	if (!call)
		return;
	call->listener = listener;
	call->req = req;
	call->drops = BPF_CORE_READ(listener, sk_drops.counter);
	call->accept_full = accept_queue_full(listener);
}

static __always_inline bool recall_softirq(enum softirq_slot slot, struct pending_call *call)
{
	__u32 key = slot;
	struct pending_call *found = bpf_map_lookup_elem(&softirq_pending, &key);

	if (!found || !found->listener)
		return false;
	*call = *found;
	found->listener = NULL;
	return true;
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
		emit(QWATCH_LISTEN, call.listener, NULL, QWATCH_STAGE_NONE);
}

/*
 * Each transition has one handler below, called by a kprobe/kretprobe
 * pair or by an fentry/fexit twin (--attach): fexit sees the arguments and
 * the return value at once and needs no pending entry.
 */
static __always_inline void on_hash_add_done(struct sock *sk, struct request_sock *req, long ret,
					     bool direct)
{
	if (hash_add_returns_bool && !(ret & 0xff))
		return;	/* a duplicate request was already hashed */
	if (emit_timed(QWATCH_SYN_RECV, sk, req, QWATCH_STAGE_NONE, 0, direct, direct))
		queued_now(&request_queued, req);
}

static __always_inline void on_hashdance_done(struct sock *sk, struct request_sock *req,
					      struct sock *child, bool direct)
{
	if (!child)
		return;
	if (emit_timed(QWATCH_ACK_COMPLETE, sk, child, QWATCH_STAGE_NONE,
		       time_in_queue(&request_queued, req), direct, direct))
		queued_now(&child_queued, child);
}

static __always_inline void on_req_drop_done(struct sock *sk, struct request_sock *req,
					     bool from_timer, long unlinked)
{
	if (!(unlinked & 0xff))
		return;
	time_in_queue(&request_queued, req);
	emit(from_timer ? QWATCH_EXPIRE : QWATCH_REQ_DROP, sk, req, QWATCH_STAGE_NONE);
}

/* @child is a plain number in both attach modes (see inet_csk_accept_exit). */
static __always_inline void on_accept_done(struct sock *sk, struct sock *child, bool direct)
{
	if (child)
		emit_timed(QWATCH_ACCEPT, sk, child, QWATCH_STAGE_NONE,
			   time_in_queue(&child_queued, child), direct, false);
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
	emit(QWATCH_CLOSE, sk, NULL, QWATCH_STAGE_NONE);
	return 0;
}

SEC("kprobe/inet_csk_reqsk_queue_hash_add")
int BPF_KPROBE(hash_add_entry, struct sock *sk, struct request_sock *req)
{
	remember(HOOK_HASH_ADD, sk, req, 0);
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

static __always_inline void classify_drop(const struct pending_call *call, enum qwatch_stage stage,
					  enum qwatch_event_type other_drop)
{
	const struct sock *sk = call->listener;

	if ((__u32)BPF_CORE_READ(sk, sk_drops.counter) == call->drops)
		return;
	/*
	 * Full at entry, or filled meanwhile by a handshake completing on
	 * another CPU: either way the kernel counted a ListenOverflow.
	 */
	if (call->accept_full || accept_queue_full(sk))
		emit(QWATCH_OVERFLOW, call->listener, NULL, stage);
	else
		emit(other_drop, call->listener, NULL, stage);
}

/* A SYN at a listener: whatever its handler drops shows in sk_drops. */
static __always_inline void on_conn_request_return(void)
{
	struct pending_call call;

	if (recall_softirq(SLOT_CONN_REQUEST, &call))
		classify_drop(&call, QWATCH_STAGE_SYN, QWATCH_SYN_DROP);
}

/* A final ACK for a request sock: no child means it was dropped. */
static __always_inline void on_check_req_return(const struct sock *child)
{
	struct pending_call call;

	if (recall_softirq(SLOT_CHECK_REQ, &call) && !child)
		classify_drop(&call, QWATCH_STAGE_ACK, QWATCH_ACK_DROP);
}

SEC("kprobe/tcp_conn_request")
int BPF_KPROBE(tcp_conn_request_entry, void *rsk_ops, void *af_ops, struct sock *sk)
{
	remember_softirq(SLOT_CONN_REQUEST, sk, NULL);
	return 0;
}

SEC("kretprobe/tcp_conn_request")
int BPF_KRETPROBE(tcp_conn_request_return)
{
	on_conn_request_return();
	return 0;
}

SEC("kprobe/hsp_conn_request")
int BPF_KPROBE(hsp_conn_request_entry, struct sock *sk)
{
	remember_softirq(SLOT_CONN_REQUEST, sk, NULL);
	return 0;
}

SEC("kretprobe/hsp_conn_request")
int BPF_KRETPROBE(hsp_conn_request_return)
{
	on_conn_request_return();
	return 0;
}

SEC("kprobe/tcp_check_req")
int BPF_KPROBE(tcp_check_req_entry, struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	remember_softirq(SLOT_CHECK_REQ, sk, req);
	return 0;
}

SEC("kretprobe/tcp_check_req")
int BPF_KRETPROBE(tcp_check_req_return, struct sock *child)
{
	on_check_req_return(child);
	return 0;
}

SEC("kprobe/hsp_check_req")
int BPF_KPROBE(hsp_check_req_entry, struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	remember_softirq(SLOT_CHECK_REQ, sk, req);
	return 0;
}

SEC("kretprobe/hsp_check_req")
int BPF_KRETPROBE(hsp_check_req_return, struct sock *child)
{
	on_check_req_return(child);
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
	emit(QWATCH_SYNACK_RETRANSMIT, sk, req, QWATCH_STAGE_NONE);
	return 0;
}

/* HSP's SYN-ACK retransmits: its request_sock_ops.rtx_syn_ack. */
SEC("kprobe/hsp_rtx_synack")
int BPF_KPROBE(hsp_rtx_synack_entry, const struct sock *sk, const struct request_sock *req)
{
	emit(QWATCH_SYNACK_RETRANSMIT, sk, req, QWATCH_STAGE_NONE);
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
		emit(QWATCH_LISTEN, BPF_CORE_READ(sock, sk), NULL, QWATCH_STAGE_NONE);
	return 0;
}

SEC("fentry/inet_csk_listen_stop")
int BPF_PROG(inet_csk_listen_stop_fentry, struct sock *sk)
{
	emit(QWATCH_CLOSE, sk, NULL, QWATCH_STAGE_NONE);
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
	remember_softirq(SLOT_CONN_REQUEST, sk, NULL);
	return 0;
}

SEC("fexit/tcp_conn_request")
int BPF_PROG(tcp_conn_request_exit)
{
	on_conn_request_return();
	return 0;
}

SEC("fentry/tcp_check_req")
int BPF_PROG(tcp_check_req_fentry, struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	remember_softirq(SLOT_CHECK_REQ, sk, req);
	return 0;
}

/*
 * The return value's slot follows the arguments, whose number changes
 * (6.15 adds drop_reason): bpf_get_func_ret() finds it on every kernel.
 */
SEC("fexit/tcp_check_req")
int BPF_PROG(tcp_check_req_exit)
{
	__u64 child = 0;

	bpf_get_func_ret(ctx, &child);
	on_check_req_return((struct sock *)child);
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
 * The snapshot: every listening socket some process holds, in any netns.
 * Walking files rather than one protocol's hash tables finds TCP and HSP
 * listeners alike and names a process holding each.
 */
SEC("iter/task_file")
int dump_listeners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct qwatch_event e = {};
	struct socket *sock;
	struct sock *sk;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_LISTEN ||
	    !listener_selected(sk, QWATCH_SNAPSHOT, false))
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	e.ts_ns = bpf_ktime_get_ns();
	e.type = QWATCH_SNAPSHOT;
	e.pid = BPF_CORE_READ(task, tgid);
	read_queues(&e, sk, false);
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
