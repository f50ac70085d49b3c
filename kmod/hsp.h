/* SPDX-License-Identifier: GPL-2.0 */
/*
 * HSP internals shared by the module's files.
 *
 * Observability contract: hsp_conn_request(), hsp_check_req(), hsp_listen()
 * and hsp_rtx_synack() are probed by bpf/qwatch.bpf.c; keep them non-static
 * and out of line, and update qwatch when renaming them.
 */
#ifndef _HSP_H
#define _HSP_H

#include <linux/skbuff.h>
#include <linux/tcp.h>
#include <net/inet_connection_sock.h>
#include <net/inet_hashtables.h>
#include <net/ip.h>
#include <net/netns/generic.h>
#include <net/request_sock.h>
#include <uapi/linux/hsp.h>

#if !IS_ENABLED(CONFIG_IP_DCCP)
/*
 * Shared code finds a protocol's own inet_hashinfo through
 * tcp_or_dccp_get_hashinfo(), which returns TCP's tables unless DCCP is
 * configured: HSP sockets would then corrupt TCP's ehash.
 */
#error "HSP needs a kernel with CONFIG_IP_DCCP enabled"
#endif

/*
 * First retransmission timeout and its cap, as TCP's (TCP_TIMEOUT_INIT,
 * TCP_RTO_MAX): the kernel's request timer applies TCP's to request socks.
 */
#define HSP_TIMEOUT_INIT	((unsigned int)(1 * HZ))
#define HSP_RTO_MAX		((unsigned int)(120 * HZ))
/* TCP's TCP_TIMEOUT_MIN: "at once" for a timer. */
#define HSP_TIMEOUT_MIN		2U
#define HSP_MAX_HEADER		(MAX_HEADER + sizeof(struct iphdr) + \
				 sizeof(struct hsphdr))

/**
 * struct hsp_sock - an HSP socket
 * @hsp_icsk: the inet_connection_sock every listener and child is
 * @snd_isn: initial sequence number this end sent
 * @rcv_isn: initial sequence number the peer sent
 * @syn_sent: jiffies when connect() sent the first SYN (TCP: the
 *	retrans_stamp that bounds the SYN retries in time)
 */
struct hsp_sock {
	struct inet_connection_sock hsp_icsk;
	u32 snd_isn;
	u32 rcv_isn;
	unsigned long syn_sent;
};

/**
 * struct hsp_request_sock - a pending passive open in the SYN queue
 * @hsp_ireq: the generic request sock hashed in HSP's ehash
 * @tcp_view: the same memory as TCP's request sock: 6.12's
 *	inet_reqsk_clone() reads tcp_rsk(req)->is_mptcp of whatever request
 *	it migrates (inet_connection_sock.c:1009), so that byte must lie
 *	inside this object and be 0 (hsp_openreq_init())
 * @snt_isn: initial sequence number of our SYN-ACK
 * @rcv_isn: initial sequence number of the peer's SYN
 * @last_dup_syn_answer: jiffies when a duplicate SYN was last answered;
 *	rate-limits those answers as TCP's last_oow_ack_time does
 *
 * Copied with memcpy() when the kernel migrates a request between
 * SO_REUSEPORT listeners, so it holds no pointers.
 */
struct hsp_request_sock {
	union {
		struct inet_request_sock hsp_ireq;
		struct tcp_request_sock tcp_view;
	};
	u32 snt_isn;
	u32 rcv_isn;
	u32 last_dup_syn_answer;
};

static inline struct hsp_sock *hsp_sk(const struct sock *sk)
{
	return (struct hsp_sock *)sk;
}

static inline struct hsp_request_sock *hsp_rsk(const struct request_sock *req)
{
	return (struct hsp_request_sock *)req;
}

static inline struct hsphdr *hsp_hdr(const struct sk_buff *skb)
{
	return (struct hsphdr *)skb_transport_header(skb);
}

/* Counters of /proc/net/hsp_stat, per network namespace. */
enum hsp_mib {
	HSP_MIB_IN_SEGS,
	HSP_MIB_OUT_SEGS,
	HSP_MIB_SYNS_RECEIVED,
	HSP_MIB_SYNACKS_SENT,
	HSP_MIB_SYNACK_RETRANSMITS,
	HSP_MIB_SYN_RETRANSMITS,
	HSP_MIB_ACTIVE_OPENS,
	HSP_MIB_PASSIVE_OPENS,
	HSP_MIB_LISTEN_OVERFLOWS,
	HSP_MIB_SYN_QUEUE_DROPS,
	HSP_MIB_REQUEST_TIMEOUTS,
	HSP_MIB_RSTS_SENT,
	HSP_MIB_RSTS_RECEIVED,
	HSP_MIB_CSUM_ERRORS,
	HSP_MIB_HEADER_ERRORS,
	HSP_MIB_DUP_SYNS_RATE_LIMITED,
	HSP_MIB_RSTS_RATE_LIMITED,
	HSP_MIB_MAX
};

/**
 * struct hsp_net - HSP's state in one network namespace
 * @ctl_sk: raw IPv4 kernel socket that sends resets for no HSP socket; it
 *	belongs to the built-in raw protocol, so it never pins this module
 * @mib: the counters of /proc/net/hsp_stat
 * @reset_lock: protects the reset budget below
 * @reset_window_start: jiffies when the current one-second window began
 * @resets_in_window: resets sent to invalid input in that window
 */
struct hsp_net {
	struct sock *ctl_sk;
	atomic_long_t mib[HSP_MIB_MAX];
	spinlock_t reset_lock;	/* the reset budget below */
	unsigned long reset_window_start;
	unsigned int resets_in_window;
};

extern unsigned int hsp_net_id;
extern int hsp_protocol;
extern int hsp_synack_retries;
extern int hsp_syn_retries;
extern int hsp_fail_every;
extern int hsp_reset_rate;
extern struct inet_hashinfo hsp_hashinfo;
extern struct inet_timewait_death_row hsp_death_row;

static inline struct hsp_net *hsp_pernet(const struct net *net)
{
	return net_generic(net, hsp_net_id);
}

static inline void hsp_inc_stats(const struct net *net, enum hsp_mib field)
{
	atomic_long_inc(&hsp_pernet(net)->mib[field]);
}

/* A drop at a listener, counted where TCP counts its own (ListenDrops). */
static inline void hsp_listendrop(struct sock *sk)
{
	atomic_inc(&sk->sk_drops);
	__NET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENDROPS);
}

/* hsp_main.c */
bool hsp_should_fail_alloc(void);

/* hsp_input.c */
extern const struct net_protocol hsp_net_protocol;
extern const struct inet_connection_sock_af_ops hsp_ipv4_af_ops;
int hsp_conn_request(struct sock *sk, struct sk_buff *skb);
struct sock *hsp_check_req(struct sock *sk, struct sk_buff *skb,
			   struct request_sock *req);
int hsp_do_rcv(struct sock *sk, struct sk_buff *skb);

/* hsp_output.c */
extern struct request_sock_ops hsp_request_sock_ops;
int hsp_v4_send_synack(const struct sock *sk, struct request_sock *req);
int hsp_rtx_synack(const struct sock *sk, struct request_sock *req);
void hsp_v4_send_reset(struct net *net, const struct sk_buff *skb);
int hsp_send_control(struct sock *sk, u8 flags);
void hsp_reqsk_send_ack(const struct sock *sk, struct sk_buff *skb,
			struct request_sock *req);

/* hsp_sock.c */
extern struct proto hsp_prot;
extern const struct proto_ops hsp_inet_ops;
void hsp_set_state(struct sock *sk, int state);
void hsp_done(struct sock *sk);
void hsp_init_xmit_timers(struct sock *sk);
unsigned int hsp_sync_mss(struct sock *sk, u32 pmtu);
int hsp_listen(struct socket *sock, int backlog);

/* hsp_proc.c */
int hsp_proc_init_net(struct net *net);
void hsp_proc_exit_net(struct net *net);

#endif /* _HSP_H */
