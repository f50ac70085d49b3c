// SPDX-License-Identifier: GPL-2.0
/*
 * HSP segment construction and transmission, and the request sock ops
 * whose callbacks are mostly transmissions.
 *
 * Every segment is a bare header: HSP carries no data. Replies for which
 * there is no HSP socket go out through the namespace's raw control socket,
 * SYN-ACKs through the listener, everything else through the connection.
 */
#include <net/ip.h>
#include <net/route.h>
#include <net/tcp.h>		/* tcp_clock_us() */

#include "hsp.h"

static struct sk_buff *hsp_alloc_segment(void)
{
	struct sk_buff *skb = alloc_skb(HSP_MAX_HEADER, GFP_ATOMIC);

	if (skb)
		skb_reserve(skb, HSP_MAX_HEADER);
	return skb;
}

static void hsp_push_header(struct sk_buff *skb, __be32 saddr, __be32 daddr,
			    __be16 sport, __be16 dport, u32 seq, u32 ack_seq,
			    u8 flags)
{
	struct hsphdr *hh;

	skb_push(skb, sizeof(*hh));
	skb_reset_transport_header(skb);
	hh = hsp_hdr(skb);
	memset(hh, 0, sizeof(*hh));
	hh->source = sport;
	hh->dest = dport;
	hh->seq = htonl(seq);
	hh->ack_seq = htonl(ack_seq);
	hh->doff = sizeof(*hh) / 4;
	hh->flags = flags;
	hh->check = csum_tcpudp_magic(saddr, daddr, sizeof(*hh), hsp_protocol,
				      csum_partial(hh, sizeof(*hh), 0));
	skb->ip_summed = CHECKSUM_NONE;
}

/*
 * Evaluates what ip_build_and_send_pkt() or ip_queue_xmit() returned for a
 * segment with @flags, and counts the segment only if it went out, as DCCP
 * counts its own (NET_XMIT_CN: sent, though congestion was signalled).
 * Returns 0 or a negative errno.
 */
static int hsp_xmit_done(struct net *net, u8 flags, int err)
{
	err = net_xmit_eval(err);
	if (err)
		return err;
	hsp_inc_stats(net, HSP_MIB_OUT_SEGS);
	if (flags & HSP_FLAG_RST)
		hsp_inc_stats(net, HSP_MIB_RSTS_SENT);
	return 0;
}

/**
 * hsp_v4_send_synack() - send the SYN-ACK of a request sock
 * @sk: the listener
 * @req: the request in the SYN queue
 *
 * Used for the first SYN-ACK and, as &request_sock_ops.rtx_syn_ack, by the
 * kernel's request timer for every retransmission.
 *
 * Return: 0 or a negative errno.
 */
int hsp_v4_send_synack(const struct sock *sk, struct request_sock *req)
{
	const struct inet_request_sock *ireq = inet_rsk(req);
	const struct hsp_request_sock *hreq = hsp_rsk(req);
	struct dst_entry *dst;
	struct sk_buff *skb;
	struct flowi4 fl4;
	int err;

	dst = inet_csk_route_req(sk, &fl4, req);
	if (!dst)
		return -EHOSTUNREACH;
	skb = hsp_alloc_segment();
	if (!skb) {
		dst_release(dst);
		return -ENOMEM;
	}
	/* The first SYN-ACK's time, as tcp_make_synack() keeps it. */
	if (!tcp_rsk(req)->snt_synack)
		tcp_rsk(req)->snt_synack = tcp_clock_us();
	hsp_push_header(skb, ireq->ir_loc_addr, ireq->ir_rmt_addr,
			htons(ireq->ir_num), ireq->ir_rmt_port, hreq->snt_isn,
			hreq->rcv_isn + 1, HSP_FLAG_SYN | HSP_FLAG_ACK);
	skb_dst_set(skb, dst);
	/* Owned by the request, as TCP's: egress policy sees the listener. */
	skb_set_owner_w(skb, req_to_sk(req));
	/* The request's mark (fwmark_accept), kept by ip_build_and_send_pkt(). */
	skb->mark = ireq->ir_mark;

	rcu_read_lock();
	err = ip_build_and_send_pkt(skb, sk, ireq->ir_loc_addr,
				    ireq->ir_rmt_addr,
				    rcu_dereference(ireq->ireq_opt),
				    READ_ONCE(inet_sk(sk)->tos));
	rcu_read_unlock();
	return hsp_xmit_done(sock_net(sk), HSP_FLAG_SYN | HSP_FLAG_ACK, err);
}

/*
 * Resets answer whatever a peer sends to a port or request that does not
 * take it, so a spoofed stream of such segments would make us send as many
 * packets at a third party. TCP on 6.1 does not limit these; HSP keeps a
 * per-namespace budget of reset_rate resets per one-second window.
 */
static bool hsp_reset_allowed(struct net *net)
{
	struct hsp_net *hn = hsp_pernet(net);
	int rate = READ_ONCE(hsp_reset_rate);
	bool allowed = true;

	if (rate <= 0)
		return true;
	spin_lock_bh(&hn->reset_lock);
	if (time_after_eq(jiffies, hn->reset_window_start + HZ)) {
		hn->reset_window_start = jiffies;
		hn->resets_in_window = 0;
	}
	if (hn->resets_in_window < rate)
		hn->resets_in_window++;
	else
		allowed = false;
	spin_unlock_bh(&hn->reset_lock);
	if (!allowed)
		hsp_inc_stats(net, HSP_MIB_RSTS_RATE_LIMITED);
	return allowed;
}

/*
 * Answers @skb from the namespace's control socket, addresses and ports
 * swapped: for segments no full socket sends (resets, a request's ACK).
 */
static void hsp_v4_send_reply(struct net *net, const struct sk_buff *skb,
			      u32 seq, u32 ack_seq, u8 flags)
{
	struct sock *ctl_sk = hsp_pernet(net)->ctl_sk;
	const struct hsphdr *hh = hsp_hdr(skb);
	const struct iphdr *iph = ip_hdr(skb);
	struct sk_buff *reply;
	struct flowi4 fl4;
	struct rtable *rt;
	int err;

	rt = ip_route_output_ports(net, &fl4, ctl_sk, iph->saddr, iph->daddr,
				   hh->source, hh->dest, hsp_protocol, 0,
				   inet_iif(skb));
	if (IS_ERR(rt))
		return;
	reply = hsp_alloc_segment();
	if (!reply) {
		ip_rt_put(rt);
		return;
	}
	hsp_push_header(reply, iph->daddr, iph->saddr, hh->dest, hh->source,
			seq, ack_seq, flags);
	skb_dst_set(reply, &rt->dst);
	err = ip_build_and_send_pkt(reply, ctl_sk, iph->daddr, iph->saddr,
				    NULL, 0);
	hsp_xmit_done(net, flags, err);
}

/**
 * hsp_v4_send_reset() - answer a segment that no HSP socket takes with RST
 * @net: the namespace the segment arrived in
 * @skb: the offending segment, its header already validated
 *
 * Never answers a RST, nor anything not addressed to a local unicast
 * address, nor more than reset_rate segments a second. As TCP: a segment
 * with ACK gets RST with seq = its ack_seq, other segments RST|ACK
 * acknowledging them.
 */
void hsp_v4_send_reset(struct net *net, const struct sk_buff *skb)
{
	const struct hsphdr *hh = hsp_hdr(skb);

	if (hh->flags & HSP_FLAG_RST)
		return;
	/*
	 * Only local unicast destinations. A segment queued to a socket's
	 * backlog may have lost its dst; it matched a socket, so it was local.
	 */
	if (skb_rtable(skb) && skb_rtable(skb)->rt_type != RTN_LOCAL)
		return;
	if (!hsp_reset_allowed(net))
		return;

	if (hh->flags & HSP_FLAG_ACK)
		hsp_v4_send_reply(net, skb, ntohl(hh->ack_seq), 0,
				  HSP_FLAG_RST);
	else
		hsp_v4_send_reply(net, skb, 0,
				  ntohl(hh->seq) + !!(hh->flags & HSP_FLAG_SYN),
				  HSP_FLAG_RST | HSP_FLAG_ACK);
}

/**
 * hsp_reqsk_send_ack() - &request_sock_ops.send_ack: a request's bare ACK
 * @sk: the listener (unused: the answer is built from @skb and @req)
 * @skb: the segment to answer, from the request's peer
 * @req: the request in the SYN queue
 *
 * Tells a peer that sent another SYN on the request's 4-tuple which
 * handshake this end is in; rate-limited by the caller.
 */
void hsp_reqsk_send_ack(const struct sock *sk, struct sk_buff *skb,
			struct request_sock *req)
{
	const struct hsp_request_sock *hreq = hsp_rsk(req);

	hsp_v4_send_reply(read_pnet(&inet_rsk(req)->ireq_net), skb,
			  hreq->snt_isn + 1, hreq->rcv_isn + 1, HSP_FLAG_ACK);
}

/**
 * hsp_reqsk_send_reset() - &request_sock_ops.send_reset
 * @sk: the listener, whose namespace the reset is sent in (a segment
 *      taken from a backlog may have lost its dst)
 * @skb: the segment to answer
 * @reason: (6.10+) why, for TCP's tracepoint; HSP has no such tracepoint
 */
#ifdef HSP_SEND_RESET_HAS_REASON
static void hsp_reqsk_send_reset(const struct sock *sk, struct sk_buff *skb,
				 enum sk_rst_reason reason)
#else
static void hsp_reqsk_send_reset(const struct sock *sk, struct sk_buff *skb)
#endif
{
	hsp_v4_send_reset(sock_net(sk), skb);
}

/**
 * hsp_send_control() - send a bare SYN, ACK or RST on a connection
 * @sk: a connecting or connected socket, routed by connect() or by
 *	syn_recv_sock()
 * @flags: the HSP flags to send
 *
 * Return: 0 or a negative errno.
 */
int hsp_send_control(struct sock *sk, u8 flags)
{
	struct inet_sock *inet = inet_sk(sk);
	struct hsp_sock *hs = hsp_sk(sk);
	u32 ack_seq = 0, seq;
	struct sk_buff *skb;
	int err;

	skb = hsp_alloc_segment();
	if (!skb)
		return -ENOBUFS;
	seq = (flags & HSP_FLAG_SYN) ? hs->snd_isn : hs->snd_isn + 1;
	if (flags & HSP_FLAG_ACK)
		ack_seq = hs->rcv_isn + 1;
	hsp_push_header(skb, inet->inet_saddr, inet->inet_daddr,
			inet->inet_sport, inet->inet_dport, seq, ack_seq,
			flags);
	/* Owned, as TCP's: cgroup egress, xt_owner and skuid match see sk. */
	skb_set_owner_w(skb, sk);
	err = ip_queue_xmit(sk, skb, &inet->cork.fl);
	return hsp_xmit_done(sock_net(sk), flags, err);
}

/**
 * hsp_rtx_synack() - &request_sock_ops.rtx_syn_ack: send a SYN-ACK again
 * @sk: the listener
 * @req: the request
 *
 * Called by the kernel's request timer and for a retransmitted SYN.
 * Probed by qwatch for its synack_retransmit events.
 *
 * Return: 0 or a negative errno.
 */
int hsp_rtx_synack(const struct sock *sk, struct request_sock *req)
{
	int err = hsp_v4_send_synack(sk, req);

	if (!err) {
		hsp_inc_stats(sock_net(sk), HSP_MIB_SYNACKS_SENT);
		hsp_inc_stats(sock_net(sk), HSP_MIB_SYNACK_RETRANSMITS);
	}
	return err;
}

static void hsp_reqsk_destructor(struct request_sock *req)
{
	kfree(rcu_dereference_protected(inet_rsk(req)->ireq_opt, 1));
}

static void hsp_syn_ack_timeout(const struct request_sock *req)
{
	hsp_inc_stats(read_pnet(&inet_rsk(req)->ireq_net),
		      HSP_MIB_REQUEST_TIMEOUTS);
}

struct request_sock_ops hsp_request_sock_ops __read_mostly = {
	.family		= PF_INET,
	.obj_size	= sizeof(struct hsp_request_sock),
	.rtx_syn_ack	= hsp_rtx_synack,
	.send_ack	= hsp_reqsk_send_ack,
	.send_reset	= hsp_reqsk_send_reset,
	.destructor	= hsp_reqsk_destructor,
	.syn_ack_timeout = hsp_syn_ack_timeout,
};
