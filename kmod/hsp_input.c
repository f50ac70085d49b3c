// SPDX-License-Identifier: GPL-2.0
/*
 * HSP receive path: the passive open through the kernel's inet_csk queues.
 *
 * SYN:       hsp_conn_request() -> inet_reqsk_alloc() -> LSM ->
 *            inet_csk_reqsk_queue_hash_add() (SYN queue, qlen/young) -> SYN-ACK
 * final ACK: ehash finds the request by 4-tuple -> hsp_check_req() ->
 *            syn_recv_sock (clone, inherit port, swap into ehash) ->
 *            inet_csk_complete_hashdance() (accept queue) -> wake listener
 * accept():  inet_csk_accept()
 *
 * Limits and drops follow TCP on the same kernel with syncookies off and
 * tcp_abort_on_overflow = 0.
 */
#include <linux/filter.h>
#include <linux/random.h>
#include <linux/security.h>
#include <net/ip.h>
#include <net/protocol.h>
#include <net/route.h>
#include <net/sock.h>
#include <net/tcp.h>		/* inet_sk_transparent() */
#include <net/xfrm.h>

#include "hsp.h"

/*
 * Without syncookies TCP keeps the last quarter of tcp_max_syn_backlog for
 * peers it has seen before; HSP has no such peers, so that quarter is never
 * used, exactly as for a new TCP peer.
 */
static bool hsp_syn_queue_reserved(const struct sock *sk)
{
	const struct net *net = sock_net(sk);
	int max_syn_backlog;

	if (READ_ONCE(net->ipv4.sysctl_tcp_syncookies))
		return false;
	max_syn_backlog = READ_ONCE(net->ipv4.sysctl_max_syn_backlog);
	return max_syn_backlog - inet_csk_reqsk_queue_len(sk) <
	       (max_syn_backlog >> 2);
}

static void hsp_warn_syn_flood(struct sock *sk)
{
	struct request_sock_queue *queue = &inet_csk(sk)->icsk_accept_queue;

	if (!READ_ONCE(queue->synflood_warned) &&
	    !xchg(&queue->synflood_warned, 1))
		net_info_ratelimited("HSP: possible SYN flooding on port %u. Dropping request.\n",
				     inet_sk(sk)->inet_num);
}

/*
 * Every field of a new request that anything reads, as tcp_openreq_init()
 * and tcp_v4_init_req() set them: request socks come from a
 * SLAB_TYPESAFE_BY_RCU cache that is never zeroed, so a field left alone
 * keeps the value of the request that used the memory before.
 */
static void hsp_openreq_init(struct request_sock *req, const struct sock *sk,
			     struct sk_buff *skb)
{
	struct inet_request_sock *ireq = inet_rsk(req);
	struct hsp_request_sock *hreq = hsp_rsk(req);
	const struct hsphdr *hh = hsp_hdr(skb);

	/* The 4-tuple first: the LSM hook and the ehash both read it. */
	sk_rcv_saddr_set(req_to_sk(req), ip_hdr(skb)->daddr);
	sk_daddr_set(req_to_sk(req), ip_hdr(skb)->saddr);
	ireq->ir_rmt_port = hh->source;
	ireq->ir_num = ntohs(hh->dest);
	ireq->ir_mark = inet_request_mark(sk, skb);
	ireq->ir_iif = inet_request_bound_dev_if(sk, skb);
	/* The request timer keeps an acked request whose SYN-ACK fails. */
	ireq->acked = 0;
	/* inet_sk_transparent() (nft socket, xt_socket) reads it off a
	 * request.
	 */
	ireq->no_srccheck = inet_sk_transparent(sk);
	/* TCP's options: HSP negotiates none. */
	ireq->tstamp_ok = 0;
	ireq->sack_ok = 0;
	ireq->wscale_ok = 0;
	ireq->snd_wscale = 0;
	ireq->rcv_wscale = 0;
	ireq->ecn_ok = 0;
#if IS_ENABLED(CONFIG_SMC)
	ireq->smc_ok = 0;
#endif
	req->rsk_rcv_wnd = 0;
	req->syncookie = 0;
	/* Read by XPS once a SYN-ACK is owned by the request. */
	sk_rx_queue_clear(req_to_sk(req));
	sk_rx_queue_set(req_to_sk(req), skb);
	hreq->rcv_isn = ntohl(hh->seq);
	hreq->snt_isn = get_random_u32();
	hreq->last_dup_syn_answer = 0;
	/* Set by the first SYN-ACK, as TCP's (tcp_make_synack()). */
	tcp_rsk(req)->snt_synack = 0;
	/* Read by the kernel's request migration (struct hsp_request_sock). */
	tcp_rsk(req)->is_mptcp = 0;
	tcp_rsk(req)->tfo_listener = false;
}

/**
 * hsp_conn_request() - a SYN for a listener: queue a request sock
 * @sk: the listener
 * @skb: the SYN, its header validated
 *
 * Probed by qwatch: the drops it counts in this CPU's share of the
 * namespace's ListenOverflows, ListenDrops and TCPReqQFullDrop during the
 * call are this listener's.
 *
 * Return: 0; the caller frees @skb.
 */
int hsp_conn_request(struct sock *sk, struct sk_buff *skb)
{
	struct net *net = sock_net(sk);
	struct request_sock *req;

	hsp_inc_stats(net, HSP_MIB_SYNS_RECEIVED);
	/* As TCP: never a connection to a broadcast or multicast address. */
	if (skb_rtable(skb)->rt_flags & (RTCF_BROADCAST | RTCF_MULTICAST))
		goto drop;
	if (inet_csk_reqsk_queue_is_full(sk)) {
		/*
		 * Counted as tcp_syn_flood_action() counts it without
		 * syncookies, which HSP does not have: per-listener tools
		 * (qwatch) attribute TCPReqQFullDrop the same way for both.
		 */
		hsp_warn_syn_flood(sk);
		__NET_INC_STATS(net, LINUX_MIB_TCPREQQFULLDROP);
		hsp_inc_stats(net, HSP_MIB_SYN_QUEUE_DROPS);
		goto drop;
	}
	if (sk_acceptq_is_full(sk)) {
		__NET_INC_STATS(net, LINUX_MIB_LISTENOVERFLOWS);
		hsp_inc_stats(net, HSP_MIB_LISTEN_OVERFLOWS);
		goto drop;
	}
	/* After the accept queue, as TCP: a full one is counted as overflow. */
	if (hsp_syn_queue_reserved(sk)) {
		hsp_inc_stats(net, HSP_MIB_SYN_QUEUE_DROPS);
		goto drop;
	}

	req = hsp_should_fail_alloc() ? NULL :
	      inet_reqsk_alloc(&hsp_request_sock_ops, sk, true);
	if (!req)
		goto drop;
	hsp_openreq_init(req, sk, skb);

	if (security_inet_conn_request(sk, skb, req))
		goto free_request;

#ifdef HSP_HASH_ADD_RETURNS_BOOL
	if (!inet_csk_reqsk_queue_hash_add(sk, req, HSP_TIMEOUT_INIT)) {
		/* An identical SYN on another CPU queued the same request. */
		reqsk_free(req);
		return 0;
	}
#else
	inet_csk_reqsk_queue_hash_add(sk, req, HSP_TIMEOUT_INIT);
#endif
	if (!hsp_v4_send_synack(sk, req))
		hsp_inc_stats(net, HSP_MIB_SYNACKS_SENT);
	reqsk_put(req);
	return 0;

free_request:
	reqsk_free(req);
drop:
	hsp_listendrop(sk);
	return 0;
}

static struct sock *hsp_v4_syn_recv_sock(const struct sock *sk,
					 struct sk_buff *skb,
					 struct request_sock *req,
					 struct dst_entry *dst,
					 struct request_sock *req_unhash,
					 bool *own_req
#ifdef HSP_SYN_RECV_SOCK_HAS_OPT_CHILD_INIT
					 , void (*opt_child_init)(struct sock *newsk,
								  const struct sock *sk)
#endif
					 )
{
	struct inet_request_sock *ireq = inet_rsk(req);
	struct ip_options_rcu *inet_opt;
	struct inet_sock *newinet;
	struct sock *newsk;

	if (sk_acceptq_is_full(sk))
		goto exit_overflow;

	newsk = hsp_should_fail_alloc() ? NULL :
		inet_csk_clone_lock(sk, req, GFP_ATOMIC);
	if (!newsk)
		goto exit;
	hsp_sk(newsk)->snd_isn = hsp_rsk(req)->snt_isn;
	hsp_sk(newsk)->rcv_isn = hsp_rsk(req)->rcv_isn;
	hsp_init_xmit_timers(newsk);
	/*
	 * When the handshake completed, where tcp_create_openreq_child()
	 * puts it (qwatch --queues reads it as the child's age).
	 */
	inet_csk(newsk)->icsk_ack.lrcvtime = tcp_jiffies32;
	newinet = inet_sk(newsk);
	sk_daddr_set(newsk, ireq->ir_rmt_addr);
	sk_rcv_saddr_set(newsk, ireq->ir_loc_addr);
	/*
	 * The request's device, not the listener's: the same unless the
	 * listener is unbound and tcp_l3mdev_accept put the request in the
	 * VRF its SYN came in on.
	 */
	newsk->sk_bound_dev_if = ireq->ir_iif;
	newinet->inet_saddr = ireq->ir_loc_addr;
	/*
	 * sk_clone_lock() copied the listener's IP options pointer: the child
	 * takes the request's own (none: HSP echoes no options) instead, or
	 * both would free the listener's.
	 */
	inet_opt = rcu_dereference(ireq->ireq_opt);
	RCU_INIT_POINTER(newinet->inet_opt, inet_opt);
	inet_csk(newsk)->icsk_ext_hdr_len = inet_opt ? inet_opt->opt.optlen : 0;
	newinet->mc_index = inet_iif(skb);
	newinet->mc_ttl = ip_hdr(skb)->ttl;
	newinet->rcv_tos = ip_hdr(skb)->tos;
	atomic_set(&newinet->inet_id, get_random_u16());

	if (!dst) {
		dst = inet_csk_route_child_sock(sk, newsk, req);
		if (!dst)
			goto put_and_exit;
	}
	sk_setup_caps(newsk, dst);
	hsp_sync_mss(newsk, dst_mtu(dst));
#ifdef HSP_SYN_RECV_SOCK_HAS_OPT_CHILD_INIT
	if (opt_child_init)
		opt_child_init(newsk, sk);
#endif
	/* The final ACK is valid: from our side the connection is open. */
	inet_sk_set_state(newsk, TCP_ESTABLISHED);

	if (__inet_inherit_port(sk, newsk) < 0)
		goto put_and_exit;
	/* Fully set up before this: from here on other CPUs can find it. */
	*own_req = inet_ehash_nolisten(newsk, req_to_sk(req_unhash), NULL);
	if (*own_req) {
		ireq->ireq_opt = NULL;
		hsp_inc_stats(sock_net(sk), HSP_MIB_PASSIVE_OPENS);
	} else {
		/* Another CPU's child owns the request and its options. */
		newinet->inet_opt = NULL;
	}
	return newsk;

exit_overflow:
	__NET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);
	hsp_inc_stats(sock_net(sk), HSP_MIB_LISTEN_OVERFLOWS);
exit:
	hsp_listendrop((struct sock *)sk);
	return NULL;
put_and_exit:
	newinet->inet_opt = NULL;
	inet_csk_prepare_forced_close(newsk);
	hsp_done(newsk);
	goto exit;
}

/*
 * As TCP's tcp_oow_rate_limited(): a request answers another SYN (a copy of
 * its own, or one of a new connection on its 4-tuple) at most once per
 * net.ipv4.tcp_invalid_ratelimit, so a peer replaying SYNs cannot make it
 * send a segment per SYN. Requests are handled on several CPUs at once.
 */
static bool hsp_req_syn_rate_limited(const struct net *net,
				     struct hsp_request_sock *hreq)
{
	u32 last = READ_ONCE(hreq->last_dup_syn_answer);
	u32 now = (u32)jiffies;

	if (last) {
		s32 elapsed = (s32)(now - last);

		if (elapsed >= 0 &&
		    elapsed <
		    READ_ONCE(net->ipv4.sysctl_tcp_invalid_ratelimit)) {
			hsp_inc_stats(net, HSP_MIB_DUP_SYNS_RATE_LIMITED);
			return true;
		}
	}
	WRITE_ONCE(hreq->last_dup_syn_answer, now);
	return false;
}

/**
 * hsp_check_req() - a segment for a request sock in the SYN queue
 * @sk: the listener
 * @skb: the segment, its header validated
 * @req: the request ehash found by the segment's 4-tuple
 *
 * A valid final ACK turns @req into a child in the accept queue. With the
 * accept queue full the ACK is dropped and the request kept, so the next
 * SYN-ACK retransmission gives the peer another chance. Probed by qwatch.
 *
 * Return: the child, or NULL when @skb is to be dropped.
 */
struct sock *hsp_check_req(struct sock *sk, struct sk_buff *skb,
			   struct request_sock *req)
{
	struct hsp_request_sock *hreq = hsp_rsk(req);
	const struct hsphdr *hh = hsp_hdr(skb);
	struct net *net = sock_net(sk);
	struct sock *child;
	bool own_req;

	if (hh->flags & HSP_FLAG_RST) {
		if (ntohl(hh->seq) == hreq->rcv_isn + 1) {
			hsp_inc_stats(net, HSP_MIB_RSTS_RECEIVED);
			inet_csk_reqsk_queue_drop(sk, req);
		}
		return NULL;
	}
	if (hh->flags & HSP_FLAG_SYN) {
		if (hsp_req_syn_rate_limited(net, hreq))
			return NULL;
		if (hh->flags == HSP_FLAG_SYN &&
		    ntohl(hh->seq) == hreq->rcv_isn) {
			/* The peer lost our SYN-ACK: send it again. */
			inet_rtx_syn_ack(sk, req);
		} else {
			/*
			 * Another SYN on this 4-tuple (a new connect() from a
			 * port whose old handshake died): as TCP's
			 * out-of-window answer, an ACK, which the peer's
			 * SYN_SENT socket answers with the RST that ends this
			 * stale request.
			 */
			hsp_reqsk_send_ack(sk, skb, req);
		}
		return NULL;
	}
	if (!(hh->flags & HSP_FLAG_ACK) ||
	    ntohl(hh->ack_seq) != hreq->snt_isn + 1 ||
	    ntohl(hh->seq) != hreq->rcv_isn + 1) {
		hsp_v4_send_reset(net, skb);
		return NULL;
	}

	child = inet_csk(sk)->icsk_af_ops->syn_recv_sock(sk, skb, req, NULL,
							 req, &own_req
#ifdef HSP_SYN_RECV_SOCK_HAS_OPT_CHILD_INIT
							 , NULL
#endif
							 );
	if (!child) {
		inet_rsk(req)->acked = 1;
		return NULL;
	}
	return inet_csk_complete_hashdance(sk, child, req, own_req);
}

/* The child is in the accept queue, locked by inet_csk_clone_lock(). */
static void hsp_child_process(struct sock *parent, struct sock *child)
{
	parent->sk_data_ready(parent);
	bh_unlock_sock(child);
	sock_put(child);
}

static void hsp_listen_rcv(struct sock *sk, struct sk_buff *skb)
{
	u8 flags = hsp_hdr(skb)->flags;

	if (flags & HSP_FLAG_RST)
		return;
	if (flags == HSP_FLAG_SYN) {
		hsp_conn_request(sk, skb);
		return;
	}
	/* An ACK for a request that is not (or no longer) there. */
	hsp_v4_send_reset(sock_net(sk), skb);
}

static void hsp_rcv_syn_sent(struct sock *sk, const struct sk_buff *skb)
{
	const struct hsphdr *hh = hsp_hdr(skb);
	struct hsp_sock *hs = hsp_sk(sk);
	bool acks_our_syn;

	acks_our_syn = (hh->flags & HSP_FLAG_ACK) &&
		       ntohl(hh->ack_seq) == hs->snd_isn + 1;

	if (hh->flags & HSP_FLAG_RST) {
		if (!acks_our_syn)
			return;
		hsp_inc_stats(sock_net(sk), HSP_MIB_RSTS_RECEIVED);
		sk->sk_err = ECONNREFUSED;
		sk_error_report(sk);
		hsp_done(sk);
		return;
	}
	/*
	 * An ACK of another SYN: a request the peer still holds for an older
	 * connection on this 4-tuple. A RST ends it, as TCP answers.
	 */
	if ((hh->flags & HSP_FLAG_ACK) && !acks_our_syn) {
		/* As TCP: the SYN again at once, unless it was sent again
		 * already.
		 */
		if (!inet_csk(sk)->icsk_retransmits)
			inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS,
						  HSP_TIMEOUT_MIN, HSP_RTO_MAX);
		hsp_v4_send_reset(sock_net(sk), skb);
		return;
	}
	if ((hh->flags & (HSP_FLAG_SYN | HSP_FLAG_ACK)) !=
	    (HSP_FLAG_SYN | HSP_FLAG_ACK))
		return;

	hs->rcv_isn = ntohl(hh->seq);
	inet_csk_clear_xmit_timer(sk, ICSK_TIME_RETRANS);
	hsp_set_state(sk, TCP_ESTABLISHED);
	hsp_send_control(sk, HSP_FLAG_ACK);
	if (!sock_flag(sk, SOCK_DEAD)) {
		sk->sk_state_change(sk);
		sk_wake_async(sk, SOCK_WAKE_IO, POLL_OUT);
	}
}

static void hsp_rcv_established(struct sock *sk, const struct hsphdr *hh)
{
	struct hsp_sock *hs = hsp_sk(sk);

	if (hh->flags & HSP_FLAG_RST) {
		if (ntohl(hh->seq) != hs->rcv_isn + 1)
			return;
		hsp_inc_stats(sock_net(sk), HSP_MIB_RSTS_RECEIVED);
		sk->sk_err = ECONNRESET;
		sk_error_report(sk);
		hsp_done(sk);
		return;
	}
	/* Our final ACK was lost and the server sent its SYN-ACK again. */
	if ((hh->flags & (HSP_FLAG_SYN | HSP_FLAG_ACK)) ==
	    (HSP_FLAG_SYN | HSP_FLAG_ACK) && ntohl(hh->seq) == hs->rcv_isn)
		hsp_send_control(sk, HSP_FLAG_ACK);
}

/**
 * hsp_do_rcv() - a segment for a connecting or connected socket
 * @sk: the socket, locked (directly or through its backlog)
 * @skb: the segment, its header validated; consumed
 *
 * Return: 0.
 */
int hsp_do_rcv(struct sock *sk, struct sk_buff *skb)
{
	const struct hsphdr *hh = hsp_hdr(skb);

	switch (sk->sk_state) {
	case TCP_SYN_SENT:
		hsp_rcv_syn_sent(sk, skb);
		break;
	case TCP_ESTABLISHED:
		hsp_rcv_established(sk, hh);
		break;
	default:
		break;
	}
	consume_skb(skb);
	return 0;
}

static bool hsp_header_valid(struct sk_buff *skb)
{
	const struct hsphdr *hh;
	u8 flags;

	if (!pskb_may_pull(skb, sizeof(*hh)))
		return false;
	hh = hsp_hdr(skb);
	if (hh->doff < sizeof(*hh) / 4 || !pskb_may_pull(skb, hh->doff * 4))
		return false;
	hh = hsp_hdr(skb);	/* the pull may have moved the data */
	flags = hh->flags;
	if (!flags || (flags & ~HSP_FLAGS_KNOWN))
		return false;
	/* Contradictions TCP drops as well. */
	if ((flags & HSP_FLAG_SYN) && (flags & (HSP_FLAG_RST | HSP_FLAG_FIN)))
		return false;
	return true;
}

/**
 * hsp_v4_rcv() - IPv4 protocol handler for HSP segments
 * @skb: the segment, transport header set by the IP layer
 *
 * Validates the header and the checksum before any lookup or reply, then
 * hands the segment to the request sock, listener or connection it is for;
 * a segment for nobody gets a reset.
 *
 * Return: 0.
 */
static int hsp_v4_rcv(struct sk_buff *skb)
{
	struct net *net = dev_net(skb->dev);
	const struct hsphdr *hh;
	bool refcounted;
	struct sock *sk;

	if (skb->pkt_type != PACKET_HOST)
		goto discard;
	hsp_inc_stats(net, HSP_MIB_IN_SEGS);
	if (!hsp_header_valid(skb)) {
		hsp_inc_stats(net, HSP_MIB_HEADER_ERRORS);
		goto discard;
	}
	if (skb_checksum_init(skb, hsp_protocol, inet_compute_pseudo) ||
	    skb_checksum_complete(skb)) {
		hsp_inc_stats(net, HSP_MIB_CSUM_ERRORS);
		goto discard;
	}
	hh = hsp_hdr(skb);

lookup:
	sk = __inet_lookup_skb(&hsp_hashinfo, skb, hh->doff * 4, hh->source,
			       hh->dest, inet_sdif(skb), &refcounted);
	if (!sk) {
		/* IPsec input policy first, as tcp_v4_rcv() (no_tcp_socket). */
		if (xfrm4_policy_check(NULL, XFRM_POLICY_IN, skb))
			hsp_v4_send_reset(net, skb);
		goto discard;
	}

	if (sk->sk_state == TCP_NEW_SYN_RECV) {
		struct request_sock *req = inet_reqsk(sk);
		struct sock *child;

		sk = req->rsk_listener;
		if (!xfrm4_policy_check(sk, XFRM_POLICY_IN, skb)) {
			atomic_inc(&sk->sk_drops);
			reqsk_put(req);
			goto discard;
		}
		if (unlikely(sk->sk_state != TCP_LISTEN)) {
			inet_csk_reqsk_queue_drop_and_put(sk, req);
			goto lookup;
		}
		sock_hold(sk);
		/* Socket filter, cgroup ingress and LSM, as tcp_filter(). */
		if (sk_filter_trim_cap(sk, skb, hh->doff * 4)) {
			atomic_inc(&sk->sk_drops);
			reqsk_put(req);
			goto discard_and_put;
		}
		child = hsp_check_req(sk, skb, req);
		if (!child) {
			reqsk_put(req);
			goto discard_and_put;
		}
		/* The lookup's reference to req now belongs to the accept
		 * queue.
		 */
		hsp_child_process(sk, child);
		goto consume_and_put;
	}

	if (!xfrm4_policy_check(sk, XFRM_POLICY_IN, skb)) {
		atomic_inc(&sk->sk_drops);
		goto discard_and_put_if_refcounted;
	}
	if (sk->sk_state == TCP_LISTEN) {
		if (sk_filter_trim_cap(sk, skb, hh->doff * 4)) {
			atomic_inc(&sk->sk_drops);
			goto discard_and_put_if_refcounted;
		}
		hsp_listen_rcv(sk, skb);
		goto consume_and_put_if_refcounted;
	}

	return __sk_receive_skb(sk, skb, 0, hh->doff * 4, refcounted);

consume_and_put_if_refcounted:
	if (!refcounted)
		goto consume;
consume_and_put:
	sock_put(sk);
consume:
	consume_skb(skb);
	return 0;
discard_and_put_if_refcounted:
	if (!refcounted)
		goto discard;
discard_and_put:
	sock_put(sk);
discard:
	kfree_skb(skb);
	return 0;
}

/**
 * hsp_v4_err() - ICMP errors quoting an HSP header
 * @skb: the ICMP message
 * @info: the ICMP information
 *
 * Ignored: a connecting socket retries until its SYN retries run out.
 *
 * Return: 0.
 */
static int hsp_v4_err(struct sk_buff *skb, u32 info)
{
	return 0;
}

const struct net_protocol hsp_net_protocol = {
	.handler	= hsp_v4_rcv,
	.err_handler	= hsp_v4_err,
};

const struct inet_connection_sock_af_ops hsp_ipv4_af_ops = {
	.queue_xmit	= ip_queue_xmit,
	.rebuild_header	= inet_sk_rebuild_header,
	.conn_request	= hsp_conn_request,
	.syn_recv_sock	= hsp_v4_syn_recv_sock,
	.net_header_len	= sizeof(struct iphdr),
	.setsockopt	= ip_setsockopt,
	.getsockopt	= ip_getsockopt,
	.addr2sockaddr	= inet_csk_addr2sockaddr,
	.sockaddr_len	= sizeof(struct sockaddr_in),
};
