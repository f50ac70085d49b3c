/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The ABI between bpf/qwatch.bpf.c and the reader in user/: the record
 * that travels through the ring buffer and out of the listener iterator,
 * the per-listener counters' and latencies' map values, and the records of
 * a queue dump. Fixed-width fields only, largest first, no implicit padding.
 */
#ifndef __QWATCH_H
#define __QWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Which protocol a listener speaks. HSP's IP protocol number is not spelled
 * here: the module's "proto" parameter decides it at insmod time (default
 * IPPROTO_HSP in kmod/include/uapi/linux/hsp.h), so the reader copies the
 * loaded module's value into the BPF global hsp_protocol and events carry
 * this enum instead of sk_protocol.
 */
enum qwatch_protocol {
	QWATCH_PROTO_NONE = 0,		/* neither: not watched */
	QWATCH_PROTO_TCP,
	QWATCH_PROTO_HSP,
};

/* sk_protocol of an MPTCP socket (not an IP protocol: over 255). */
#define QWATCH_IPPROTO_MPTCP	262

/*
 * What happened to a listener: the one list of event types. X(enum name,
 * name in JSON, --events and the schema). Append only: the values are ABI.
 */
#define QWATCH_EVENT_LIST(X)						\
	X(QWATCH_SNAPSHOT, "snapshot")		/* iterator: a listener as it is now */ \
	X(QWATCH_LISTEN, "listen")		/* listen() succeeded (also a backlog change) */ \
	X(QWATCH_CLOSE, "close")		/* the listener stops listening */ \
	X(QWATCH_SYN_RECV, "syn_recv")		/* a request sock entered the SYN queue */ \
	X(QWATCH_SYN_DROP, "syn_drop")		/* a SYN was dropped, accept queue not full */ \
	X(QWATCH_OVERFLOW, "overflow")		/* a SYN or final ACK dropped: accept queue full */ \
	X(QWATCH_ACK_COMPLETE, "ack_complete")	/* a request became a child in the accept queue */ \
	X(QWATCH_ACK_DROP, "ack_drop")		/* a final ACK dropped, accept queue not full */ \
	X(QWATCH_REQ_DROP, "req_drop")		/* a request left the SYN queue (RST, close) */ \
	X(QWATCH_EXPIRE, "expire")		/* a request expired after its SYN-ACK retries */ \
	X(QWATCH_SYNACK_RETRANSMIT, "synack_retransmit") /* a SYN-ACK was sent again */ \
	X(QWATCH_ACCEPT, "accept")		/* accept() took a child off the accept queue */

#define QWATCH_EVENT_ENUM_ENTRY(type, name) type,
enum qwatch_event_type {
	QWATCH_EVENT_LIST(QWATCH_EVENT_ENUM_ENTRY)
	QWATCH_EVENT_TYPES,
};
#undef QWATCH_EVENT_ENUM_ENTRY

/* Which handshake step a drop happened at (overflow, syn_drop, ack_drop). */
enum qwatch_stage {
	QWATCH_STAGE_NONE = 0,
	QWATCH_STAGE_SYN,
	QWATCH_STAGE_ACK,
};

/* Why a SYN or final ACK was dropped: the kernel counter that says so. */
enum qwatch_cause {
	QWATCH_CAUSE_NONE = 0,
	QWATCH_CAUSE_LISTEN_OVERFLOW,	/* ListenOverflows: accept queue full */
	QWATCH_CAUSE_SYN_QUEUE_FULL,	/* TCPReqQFullDrop: SYN queue full, no cookies */
	QWATCH_CAUSE_LISTEN_DROP,	/* ListenDrops only: any other reason */
};

/* How a child entered the accept queue (ack_complete). */
enum qwatch_path {
	QWATCH_PATH_HANDSHAKE = 0,	/* final ACK for a request sock */
	QWATCH_PATH_SYNCOOKIE,		/* ACK carrying a valid syncookie */
	QWATCH_PATH_FASTOPEN,		/* TFO SYN: the child exists at SYN time */
};

/*
 * What the kernel counted for one listener while qwatch was attached, each
 * by the kernel's own cause and exactly as the namespace-wide counter
 * (nstat name) counts it: the value of the listener_counters map, keyed by
 * the listener's struct sock address, so no lost event under-counts it.
 */
struct qwatch_counters {
	__u64 handshakes;		/* children created: TcpPassiveOpens */
	__u64 accepts;			/* children accept() took */
	__u64 synack_retransmits;
	__u64 expired_requests;		/* requests given up after their retries */
	__u64 listen_overflows;		/* TcpExtListenOverflows */
	__u64 listen_drops;		/* TcpExtListenDrops */
	__u64 syn_queue_full_drops;	/* TcpExtTCPReqQFullDrop */
	__u64 syn_queue_full_cookies;	/* TcpExtTCPReqQFullDoCookies */
	__u64 syncookies_sent;		/* TcpExtSyncookiesSent */
	__u64 syncookies_recv;		/* TcpExtSyncookiesRecv */
	__u64 syncookies_failed;	/* TcpExtSyncookiesFailed */
	__u64 tfo_children;		/* TcpExtTCPFastOpenPassive */
	__u64 children_queued;		/* children that entered the accept queue */
	/*
	 * Not counts: the highest length of each queue at the end of a
	 * segment's handling (when they grow), so that the live table's
	 * peaks need no event per transition.
	 */
	__u64 peak_syn_queue;
	__u64 peak_accept_queue;
	/* The last snapshot that found it through a file (its generation). */
	__u64 snapshot_seen;
};

/*
 * One transition of one listener. Queue values are absolute, read from the
 * listener right after the transition, so a lost event never makes the
 * reader's numbers drift.
 */
struct qwatch_event {
	__u64 ts_ns;		/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 listener;		/* struct sock address: an opaque key */
	/*
	 * ack_complete: SYN queued -> child created (the handshake);
	 * accept: child queued -> accepted (the accept-queue wait);
	 * 0 where qwatch did not see the start.
	 */
	__u64 latency_ns;
	/*
	 * The listener's socket cookie (SO_COOKIE, ss -e "sk:"): stable for
	 * its life and never reused. Snapshots always have it; events where
	 * something (a snapshot, ss) gave the socket one; 0 otherwise.
	 */
	__u64 cookie;
	__u8 laddr[16];		/* IPv4 in the first 4 bytes, network order */
	__u8 raddr[16];		/* peer, all zero when there is none */
	__u32 netns;		/* inode number of the listener's netns */
	__u32 pid;		/* snapshot: a process holding the listener;
				   listen, accept: the calling process */
	__u32 syn_queue;	/* icsk_accept_queue.qlen */
	__u32 syn_young;	/* icsk_accept_queue.young */
	__u32 accept_queue;	/* sk_ack_backlog */
	__u32 accept_max;	/* sk_max_ack_backlog */
	__u32 drops;		/* sk_drops */
	__u16 lport;		/* host order */
	__u16 rport;		/* host order, 0 when there is no peer */
	__u16 family;		/* AF_INET or AF_INET6 */
	__u8 type;		/* enum qwatch_event_type */
	__u8 protocol;		/* enum qwatch_protocol */
	__u8 stage;		/* enum qwatch_stage */
	__u8 cause;		/* enum qwatch_cause: drops */
	__u8 path;		/* enum qwatch_path: ack_complete */
	__u8 mptcp;		/* snapshot: the TCP listener is an MPTCP socket's */
	/*
	 * snapshot: the listener's qwatch_counters.children_queued and
	 * .accepts, read before its queues (a child is counted after it is
	 * queued, an accept after the dequeue).
	 */
	__u64 children_queued;
	__u64 accepts;
};

#ifdef __cplusplus
static_assert(sizeof(struct qwatch_event) == 120, "qwatch_event layout");
#else
_Static_assert(sizeof(struct qwatch_event) == 120, "qwatch_event layout");
#endif

#ifdef __cplusplus
static_assert(sizeof(struct qwatch_counters) == 128, "qwatch_counters layout");
#else
_Static_assert(sizeof(struct qwatch_counters) == 128, "qwatch_counters layout");
#endif

/*
 * A listener's latencies, kept by the probes (the listener_latencies map,
 * keyed like the counters) so that --metrics and --hist need no event per
 * transition. Bucket i counts latencies in [2^i, 2^(i+1)) microseconds;
 * bucket 0 also those below 1 us, the last all above.
 */
#define QWATCH_LOG2_BUCKETS	40

struct qwatch_log2_histogram {
	__u64 buckets[QWATCH_LOG2_BUCKETS];	/* their sum is the count */
	__u64 sum_ns;
};

struct qwatch_latencies {
	struct qwatch_log2_histogram handshake;		/* SYN queued -> child created */
	struct qwatch_log2_histogram accept_wait;	/* child queued -> accepted */
};

#ifdef __cplusplus
static_assert(sizeof(struct qwatch_latencies) == 656, "qwatch_latencies layout");
#else
_Static_assert(sizeof(struct qwatch_latencies) == 656, "qwatch_latencies layout");
#endif

/*
 * --queues: what a queue dump writes to its own ring buffer (queue_entries),
 * one record each. The dump iterator (dump_queues) walks each dumped
 * listener's accept queue after its snapshot record, then, in its final
 * call, every ehash table those listeners' request socks live in.
 */
enum qwatch_queue_record {
	QWATCH_QUEUE_SYN = 1,		/* a request sock in a listener's SYN queue */
	QWATCH_QUEUE_ACCEPT,		/* a child in a listener's accept queue */
	QWATCH_QUEUE_LISTENER,		/* a listener dumped: its accept queue walked */
	QWATCH_QUEUE_TABLE,		/* an ehash table walked for request socks */
};

/* struct qwatch_queue_entry.flags */
#define QWATCH_ENTRY_AGE	0x01	/* age_us is known */
#define QWATCH_ENTRY_TIMER	0x02	/* timer_us is known */
#define QWATCH_ENTRY_RX		0x04	/* rx_bytes is known (TCP) */
#define QWATCH_ENTRY_YOUNG	0x08	/* SYN: no timeout yet (req->num_timeout == 0) */
#define QWATCH_ENTRY_COMPLETE	0x10	/* LISTENER, TABLE: walked to its end */

/* The bounds of a dump's walks (see Documentation/qwatch.rst). */
#define QWATCH_ACCEPT_WALK_MAX	65536	/* children per accept queue */
#define QWATCH_BUCKET_WALK_MAX	32	/* sockets per ehash bucket */
#define QWATCH_BUCKET_TRIES	3	/* walks of a bucket whose chain moved under it */
#define QWATCH_DUMP_TABLES	64	/* ehash tables per dump */
#define QWATCH_DUMP_BUCKETS_MAX	(1U << 22)	/* ehash buckets per dump, all tables */

struct qwatch_queue_entry {
	__u64 listener;		/* struct sock address (qwatch_event.listener); TABLE: 0 */
	/*
	 * LISTENER: its socket cookie, as its snapshot record's: what the
	 * reader matches the lists to a listener's row by (an address can be
	 * a new socket's by the time the reader looks).
	 */
	__u64 cookie;
	/*
	 * SYN: the request sock's address; ACCEPT: the child's. A walk can
	 * meet an entry twice (an ehash chain walked again after it moved,
	 * a listener dumped again): the reader keeps one of each.
	 */
	__u64 sock;
	__u64 table;		/* SYN, LISTENER, TABLE: the inet_hashinfo address */
	/*
	 * SYN: when its first SYN-ACK was sent (tcp_request_sock.snt_synack,
	 * us of CLOCK_MONOTONIC, 0: not yet), the SYN queue's order;
	 * ACCEPT: its place from the head (0: what accept() returns next);
	 * LISTENER: children walked; TABLE: buckets walked.
	 */
	__u64 order;
	__u64 age_us;		/* SYN: since its first SYN-ACK; ACCEPT: since the handshake */
	__s64 timer_us;		/* SYN: until its timer fires (negative: overdue) */
	__u64 rx_bytes;		/* ACCEPT: received and not read yet */
	__u8 raddr[16];		/* the peer; IPv4 in the first 4 bytes, network order */
	__u16 rport;		/* host order */
	__u16 family;		/* AF_INET or AF_INET6 */
	__u8 type;		/* enum qwatch_queue_record */
	__u8 flags;		/* QWATCH_ENTRY_* */
	__u8 synack_retransmits;	/* SYN: req->num_retrans */
	__u8 timeouts;		/* SYN: req->num_timeout */
};

#ifdef __cplusplus
static_assert(sizeof(struct qwatch_queue_entry) == 88, "qwatch_queue_entry layout");
#else
_Static_assert(sizeof(struct qwatch_queue_entry) == 88, "qwatch_queue_entry layout");
#endif

#endif /* __QWATCH_H */
