// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/hsp: every HSP socket of the namespace, in the shape of
 * /proc/net/tcp; /proc/net/hsp_stat: the namespace's HSP counters.
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "hsp.h"

static const char *const hsp_mib_names[HSP_MIB_MAX] = {
	[HSP_MIB_IN_SEGS]		= "InSegs",
	[HSP_MIB_OUT_SEGS]		= "OutSegs",
	[HSP_MIB_SYNS_RECEIVED]		= "SynsReceived",
	[HSP_MIB_SYNACKS_SENT]		= "SynAcksSent",
	[HSP_MIB_SYNACK_RETRANSMITS]	= "SynAckRetransmits",
	[HSP_MIB_SYN_RETRANSMITS]	= "SynRetransmits",
	[HSP_MIB_ACTIVE_OPENS]		= "ActiveOpens",
	[HSP_MIB_PASSIVE_OPENS]		= "PassiveOpens",
	[HSP_MIB_LISTEN_OVERFLOWS]	= "ListenOverflows",
	[HSP_MIB_SYN_QUEUE_DROPS]	= "SynQueueDrops",
	[HSP_MIB_REQUEST_TIMEOUTS]	= "RequestTimeouts",
	[HSP_MIB_RSTS_SENT]		= "RstsSent",
	[HSP_MIB_RSTS_RECEIVED]		= "RstsReceived",
	[HSP_MIB_CSUM_ERRORS]		= "CsumErrors",
	[HSP_MIB_HEADER_ERRORS]		= "HeaderErrors",
	[HSP_MIB_DUP_SYNS_RATE_LIMITED]	= "DupSynsRateLimited",
	[HSP_MIB_RSTS_RATE_LIMITED]	= "RstsRateLimited",
};

static int hsp_stat_show(struct seq_file *seq, void *v)
{
	struct hsp_net *hn = hsp_pernet(seq_file_single_net(seq));
	int i;

	for (i = 0; i < HSP_MIB_MAX; i++)
		seq_printf(seq, "%s %lu\n", hsp_mib_names[i],
			   atomic_long_read(&hn->mib[i]));
	return 0;
}

/*
 * One line per socket. For a listener, acceptq/maxq/synq/drops are
 * sk_ack_backlog, sk_max_ack_backlog, icsk_accept_queue.qlen and sk_drops;
 * for others they are 0. Request socks (st 0C, TCP_NEW_SYN_RECV) have no
 * inode; their retrans is req->num_retrans, the SYN-ACKs sent again (what
 * ss shows for TCP's as timer:(on,...,RETRANS)), and 0 for other sockets.
 * inet_rtx_syn_ack() bumps num_retrans without the bucket's lock the
 * caller holds, so it is read once, as TCP's own dump reads it.
 */
static void hsp_show_sock(struct seq_file *seq, const struct sock *sk, int *row)
{
	unsigned int acceptq = 0, maxq = 0, synq = 0, drops = 0, retrans = 0;
	const struct inet_connection_sock *icsk = inet_csk(sk);
	kuid_t uid = GLOBAL_ROOT_UID;
	int state = sk->sk_state;
	unsigned long inode = 0;

	if (state == TCP_LISTEN) {
		acceptq = READ_ONCE(sk->sk_ack_backlog);
		maxq = READ_ONCE(sk->sk_max_ack_backlog);
		synq = reqsk_queue_len(&icsk->icsk_accept_queue);
		drops = atomic_read(&sk->sk_drops);
	}
	if (state == TCP_NEW_SYN_RECV)
		retrans = READ_ONCE(inet_reqsk(sk)->num_retrans);
	if (sk_fullsock(sk)) {
		inode = sock_i_ino((struct sock *)sk);
		uid = sock_i_uid((struct sock *)sk);
	}
	seq_printf(seq, "%4d: %08X:%04X %08X:%04X %02X %08X %08X %08X %08X %5u %8lu %7u\n",
		   (*row)++, sk->sk_rcv_saddr, sk->sk_num, sk->sk_daddr,
		   ntohs(sk->sk_dport), state, acceptq, maxq, synq, drops,
		   from_kuid_munged(seq_user_ns(seq), uid), inode, retrans);
}

static int hsp_sockets_show(struct seq_file *seq, void *v)
{
	struct net *net = seq_file_single_net(seq);
	struct inet_hashinfo *h = &hsp_hashinfo;
	const struct hlist_nulls_node *node;
	struct sock *sk;
	unsigned int i;
	int row = 0;

	seq_puts(seq, "  sl  local_address rem_address   st acceptq  maxq     synq     drops      uid    inode retrans\n");
	for (i = 0; i <= h->lhash2_mask; i++) {
		struct inet_listen_hashbucket *ilb2 = &h->lhash2[i];

		spin_lock_bh(&ilb2->lock);
		sk_nulls_for_each(sk, node, &ilb2->nulls_head)
			if (net_eq(sock_net(sk), net))
				hsp_show_sock(seq, sk, &row);
		spin_unlock_bh(&ilb2->lock);
	}
	for (i = 0; i <= h->ehash_mask; i++) {
		spinlock_t *lock = inet_ehash_lockp(h, i);

		if (hlist_nulls_empty(&h->ehash[i].chain))
			continue;
		spin_lock_bh(lock);
		sk_nulls_for_each(sk, node, &h->ehash[i].chain)
			if (net_eq(sock_net(sk), net))
				hsp_show_sock(seq, sk, &row);
		spin_unlock_bh(lock);
	}
	return 0;
}

/**
 * hsp_proc_init_net() - create /proc/net/hsp and /proc/net/hsp_stat
 * @net: the namespace
 *
 * Return: 0 or -ENOMEM.
 */
int hsp_proc_init_net(struct net *net)
{
	if (!proc_create_net_single("hsp", 0444, net->proc_net,
				    hsp_sockets_show, NULL))
		return -ENOMEM;
	if (!proc_create_net_single("hsp_stat", 0444, net->proc_net,
				    hsp_stat_show, NULL)) {
		remove_proc_entry("hsp", net->proc_net);
		return -ENOMEM;
	}
	return 0;
}

/**
 * hsp_proc_exit_net() - remove the namespace's HSP /proc files
 * @net: the namespace
 */
void hsp_proc_exit_net(struct net *net)
{
	remove_proc_entry("hsp_stat", net->proc_net);
	remove_proc_entry("hsp", net->proc_net);
}
