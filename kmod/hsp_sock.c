// SPDX-License-Identifier: GPL-2.0
/*
 * HSP socket operations: listen, connect, close and the connect timer.
 *
 * A simplification against TCP, documented in Documentation/hsp.rst: HSP
 * closes abortively. close() of a connected socket sends RST and frees it
 * at once, so there is no FIN exchange and no TIME_WAIT, and nothing keeps
 * the module loaded once the user's sockets and the segments they sent
 * (each holds its socket's memory) are gone.
 */
#include <linux/bpf-cgroup.h>
#include <linux/random.h>
#include <net/inet_common.h>
#include <net/ip.h>
#include <net/route.h>
#include <net/sock.h>

#include "hsp.h"

/**
 * hsp_set_state() - move a socket to @state, leaving the hash tables first
 *	when it closes
 * @sk: the socket
 * @state: a TCP state number
 */
void hsp_set_state(struct sock *sk, int state)
{
	if (state == TCP_CLOSE) {
		sk->sk_prot->unhash(sk);
		if (inet_csk(sk)->icsk_bind_hash &&
		    !(sk->sk_userlocks & SOCK_BINDPORT_LOCK))
			inet_put_port(sk);
	}
	inet_sk_set_state(sk, state);
}

/**
 * hsp_done() - a connection is over (reset, refused, timed out)
 * @sk: the socket, locked
 *
 * Wakes the owner, or frees the socket when nobody owns it any more.
 */
void hsp_done(struct sock *sk)
{
	hsp_set_state(sk, TCP_CLOSE);
	inet_csk_clear_xmit_timers(sk);
	sk->sk_shutdown = SHUTDOWN_MASK;
	if (!sock_flag(sk, SOCK_DEAD))
		sk->sk_state_change(sk);
	else
		inet_csk_destroy_sock(sk);
}

/* Retransmits the SYN of a connect() with TCP's backoff. */
/*
 * As TCP's retransmits_timed_out() for a SYN: whether the time @retries
 * exponentially backed-off retransmissions from the initial RTO would take
 * has passed since the first SYN. It bounds the retries once linear
 * timeouts (6.5+) keep the RTO from growing; before, it coincides with the
 * count.
 */
static bool hsp_syn_timed_out(const struct sock *sk, unsigned int retries)
{
	unsigned int doublings = ilog2(HSP_RTO_MAX / HSP_TIMEOUT_INIT);
	unsigned long timeout;

	if (retries <= doublings)
		timeout = ((2UL << retries) - 1) * HSP_TIMEOUT_INIT;
	else
		timeout = ((2UL << doublings) - 1) * HSP_TIMEOUT_INIT +
			  (unsigned long)(retries - doublings) * HSP_RTO_MAX;
	return time_after_eq(jiffies, hsp_sk(sk)->syn_sent + timeout);
}

static void hsp_retransmit_timer(struct timer_list *t)
{
	struct inet_connection_sock *icsk = from_timer(icsk, t,
						       icsk_retransmit_timer);
	struct sock *sk = &icsk->icsk_inet.sk;
	int retries, linear = 0;

	bh_lock_sock(sk);
	if (sock_owned_by_user(sk)) {
		sk_reset_timer(sk, &icsk->icsk_retransmit_timer,
			       jiffies + HZ / 20);
		goto out;
	}
	if (sk->sk_state != TCP_SYN_SENT ||
	    icsk->icsk_pending != ICSK_TIME_RETRANS)
		goto out;
	icsk->icsk_pending = 0;

	retries = icsk->icsk_syn_retries ? :
		  READ_ONCE(sock_net(sk)->ipv4.sysctl_tcp_syn_retries);
#ifdef HSP_HAS_SYN_LINEAR_TIMEOUTS
	/* As tcp_retransmit_timer(): that many more, before any backoff. */
	linear = READ_ONCE(sock_net(sk)->ipv4.sysctl_tcp_syn_linear_timeouts);
#endif
	if (icsk->icsk_retransmits >= retries + linear ||
	    (icsk->icsk_retransmits && hsp_syn_timed_out(sk, retries))) {
		sk->sk_err = ETIMEDOUT;
		sk_error_report(sk);
		hsp_done(sk);
		goto out;
	}
	icsk->icsk_retransmits++;
	/* As TCPSynRetrans: the attempt counts, sent or not. */
	hsp_inc_stats(sock_net(sk), HSP_MIB_SYN_RETRANSMITS);
	hsp_send_control(sk, HSP_FLAG_SYN);
	if (icsk->icsk_retransmits > linear)
		icsk->icsk_rto = min_t(u32, icsk->icsk_rto << 1, HSP_RTO_MAX);
	inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, icsk->icsk_rto,
				  HSP_RTO_MAX);
out:
	bh_unlock_sock(sk);
	sock_put(sk);
}

/* HSP sends no data, so it never delays an ACK nor probes a peer. */
static void hsp_idle_timer(struct timer_list *t)
{
}

/**
 * hsp_init_xmit_timers() - set up the timers of a new socket or child
 * @sk: the socket
 */
void hsp_init_xmit_timers(struct sock *sk)
{
	inet_csk_init_xmit_timers(sk, hsp_retransmit_timer, hsp_idle_timer,
				  hsp_idle_timer);
}

/**
 * hsp_sync_mss() - &inet_connection_sock.icsk_sync_mss: the MTU or the IP
 *	options changed
 * @sk: the socket
 * @pmtu: the path MTU
 *
 * Generic IPv4 code calls this on every connection socket when the IP
 * options change (IP_OPTIONS, CIPSO), as DCCP's and TCP's. HSP sends bare
 * headers, so it only records the MTU.
 *
 * Return: the largest payload a segment could carry.
 */
unsigned int hsp_sync_mss(struct sock *sk, u32 pmtu)
{
	struct inet_connection_sock *icsk = inet_csk(sk);
	unsigned int overhead;

	overhead = icsk->icsk_af_ops->net_header_len + icsk->icsk_ext_hdr_len +
		   sizeof(struct hsphdr);

	icsk->icsk_pmtu_cookie = pmtu;
	return pmtu > overhead ? pmtu - overhead : 0;
}

static int hsp_v4_init_sock(struct sock *sk)
{
	struct inet_connection_sock *icsk = inet_csk(sk);

	icsk->icsk_af_ops = &hsp_ipv4_af_ops;
	icsk->icsk_sync_mss = hsp_sync_mss;
	icsk->icsk_rto = HSP_TIMEOUT_INIT;
	icsk->icsk_syn_retries = hsp_syn_retries;
	hsp_init_xmit_timers(sk);
	return 0;
}

static void hsp_destroy_sock(struct sock *sk)
{
	inet_csk_clear_xmit_timers(sk);
	if (inet_csk(sk)->icsk_bind_hash)
		inet_put_port(sk);
}

/* cgroup connect4 programs see HSP's connects as TCP's (tcp_v4_pre_connect). */
static int hsp_v4_pre_connect(struct sock *sk, struct sockaddr *uaddr,
			      int addr_len)
{
	/* Before the program reads the address it was given. */
	if (addr_len < sizeof(struct sockaddr_in))
		return -EINVAL;
	sock_owned_by_me(sk);
#ifdef HSP_CGROUP_CONNECT_HAS_ADDRLEN
	return BPF_CGROUP_RUN_PROG_INET4_CONNECT(sk, uaddr, &addr_len);
#else
	return BPF_CGROUP_RUN_PROG_INET4_CONNECT(sk, uaddr);
#endif
}

static int hsp_v4_connect(struct sock *sk, struct sockaddr *uaddr, int addr_len)
{
	const struct sockaddr_in *usin = (struct sockaddr_in *)uaddr;
	struct inet_connection_sock *icsk = inet_csk(sk);
	struct inet_sock *inet = inet_sk(sk);
	__be16 orig_sport, orig_dport;
	struct flowi4 *fl4;
	struct rtable *rt;
	int err;

	if (addr_len < sizeof(struct sockaddr_in))
		return -EINVAL;
	if (usin->sin_family != AF_INET)
		return -EAFNOSUPPORT;

	orig_sport = inet->inet_sport;
	orig_dport = usin->sin_port;
	fl4 = &inet->cork.fl.u.ip4;
	rt = ip_route_connect(fl4, usin->sin_addr.s_addr, inet->inet_saddr,
			      sk->sk_bound_dev_if, hsp_protocol, orig_sport,
			      orig_dport, sk);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	if (rt->rt_flags & (RTCF_MULTICAST | RTCF_BROADCAST)) {
		ip_rt_put(rt);
		return -ENETUNREACH;
	}

	if (!inet->inet_saddr) {
		err = inet_bhash2_update_saddr(sk, &fl4->saddr, AF_INET);
		if (err) {
			ip_rt_put(rt);
			return err;
		}
	} else {
		sk_rcv_saddr_set(sk, inet->inet_saddr);
	}
	inet->inet_dport = usin->sin_port;
	sk_daddr_set(sk, fl4->daddr);

	/* SYN_SENT before hashing: the port is picked and the socket hashed. */
	hsp_set_state(sk, TCP_SYN_SENT);
	err = inet_hash_connect(&hsp_death_row, sk);
	if (err)
		goto failure;
	rt = ip_route_newports(fl4, rt, orig_sport, orig_dport,
			       inet->inet_sport, inet->inet_dport, sk);
	if (IS_ERR(rt)) {
		err = PTR_ERR(rt);
		rt = NULL;
		goto failure;
	}
	sk_setup_caps(sk, &rt->dst);
	hsp_sync_mss(sk, dst_mtu(&rt->dst));

	atomic_set(&inet->inet_id, get_random_u16());
	hsp_sk(sk)->snd_isn = get_random_u32();
	icsk->icsk_retransmits = 0;
	icsk->icsk_rto = HSP_TIMEOUT_INIT;
	hsp_inc_stats(sock_net(sk), HSP_MIB_ACTIVE_OPENS);
	/* A lost or unsendable SYN is the retransmit timer's business. */
	hsp_sk(sk)->syn_sent = jiffies;
	hsp_send_control(sk, HSP_FLAG_SYN);
	inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, icsk->icsk_rto,
				  HSP_RTO_MAX);
	return 0;

failure:
	hsp_set_state(sk, TCP_CLOSE);
	inet_bhash2_reset_saddr(sk);
	if (rt)
		ip_rt_put(rt);
	sk->sk_route_caps = 0;
	inet->inet_dport = 0;
	return err;
}

/**
 * hsp_listen() - &proto_ops.listen: start or resize a listener
 * @sock: the socket
 * @backlog: the accept queue limit, already clamped to somaxconn
 *
 * HSP's own, not inet_listen(): that one sets up TCP Fast Open and runs
 * TCP's sock_ops BPF hook, both of which assume a tcp_sock.
 *
 * Return: 0 or a negative errno.
 */
int hsp_listen(struct socket *sock, int backlog)
{
	struct sock *sk = sock->sk;
	unsigned char old_state;
	int err;

	lock_sock(sk);
	err = -EINVAL;
	if (sock->state != SS_UNCONNECTED || sock->type != SOCK_STREAM)
		goto out;
	old_state = sk->sk_state;
	if (!((1 << old_state) & (TCPF_CLOSE | TCPF_LISTEN)))
		goto out;

	WRITE_ONCE(sk->sk_max_ack_backlog, backlog);
	if (old_state != TCP_LISTEN) {
		/* The kernel's request timer reads the SYN-ACK retries here. */
		inet_csk(sk)->icsk_syn_retries = hsp_synack_retries;
		err = inet_csk_listen_start(sk);
		if (err)
			goto out;
	}
	err = 0;
out:
	release_sock(sk);
	return err;
}

static int hsp_disconnect(struct sock *sk, int flags)
{
	int old_state = sk->sk_state;

	if (old_state != TCP_CLOSE)
		hsp_set_state(sk, TCP_CLOSE);
	if (old_state == TCP_LISTEN)
		inet_csk_listen_stop(sk);
	else if (old_state == TCP_ESTABLISHED)
		hsp_send_control(sk, HSP_FLAG_RST);
	if (old_state == TCP_ESTABLISHED || old_state == TCP_SYN_SENT)
		sk->sk_err = ECONNRESET;

	inet_csk_clear_xmit_timers(sk);
	inet_csk(sk)->icsk_retransmits = 0;
	inet_bhash2_reset_saddr(sk);
	inet_sk(sk)->inet_dport = 0;
	sk->sk_shutdown = 0;
	sock_reset_flag(sk, SOCK_DONE);
	sk_error_report(sk);
	return 0;
}

static void hsp_close(struct sock *sk, long timeout)
{
	int state;

	lock_sock(sk);
	sk->sk_shutdown = SHUTDOWN_MASK;
	state = sk->sk_state;
	if (state == TCP_ESTABLISHED)
		hsp_send_control(sk, HSP_FLAG_RST);
	if (state != TCP_CLOSE)
		hsp_set_state(sk, TCP_CLOSE);
	if (state == TCP_LISTEN)
		inet_csk_listen_stop(sk);

	sock_hold(sk);
	sock_orphan(sk);
	release_sock(sk);

	local_bh_disable();
	bh_lock_sock(sk);
	this_cpu_inc(*sk->sk_prot->orphan_count);
	inet_csk_destroy_sock(sk);
	bh_unlock_sock(sk);
	local_bh_enable();
	sock_put(sk);
}

static int hsp_setsockopt(struct sock *sk, int level, int optname,
			  sockptr_t optval, unsigned int optlen)
{
	if (level == SOL_IP)
		return ip_setsockopt(sk, level, optname, optval, optlen);
	return -ENOPROTOOPT;
}

static int hsp_getsockopt(struct sock *sk, int level, int optname,
			  char __user *optval, int __user *optlen)
{
	if (level == SOL_IP)
		return ip_getsockopt(sk, level, optname, optval, optlen);
	return -ENOPROTOOPT;
}

static __poll_t hsp_poll(struct file *file, struct socket *sock,
			 poll_table *wait)
{
	struct sock *sk = sock->sk;
	__poll_t mask = 0;
	int state;

	sock_poll_wait(file, sock, wait);
	state = inet_sk_state_load(sk);
	if (state == TCP_LISTEN)
		return inet_csk_listen_poll(sk);

	if (READ_ONCE(sk->sk_err))
		mask |= EPOLLERR;
	if (READ_ONCE(sk->sk_shutdown) == SHUTDOWN_MASK || state == TCP_CLOSE)
		mask |= EPOLLHUP;
	if (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN)
		mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
	if (state == TCP_ESTABLISHED)
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

/* HSP carries no data yet: both directions fail with EOPNOTSUPP. */
static int hsp_sock_sendmsg(struct socket *sock, struct msghdr *msg, size_t len)
{
	return -EOPNOTSUPP;
}

static int hsp_sock_recvmsg(struct socket *sock, struct msghdr *msg, size_t len,
			    int flags)
{
	return -EOPNOTSUPP;
}

const struct proto_ops hsp_inet_ops = {
	.family		= PF_INET,
	.owner		= THIS_MODULE,
	.release	= inet_release,
	.bind		= inet_bind,
	.connect	= inet_stream_connect,
	.socketpair	= sock_no_socketpair,
	.accept		= inet_accept,
	.getname	= inet_getname,
	.poll		= hsp_poll,
	.ioctl		= inet_ioctl,
	.gettstamp	= sock_gettstamp,
	.listen		= hsp_listen,
	.shutdown	= inet_shutdown,
	.setsockopt	= sock_common_setsockopt,
	.getsockopt	= sock_common_getsockopt,
	.sendmsg	= hsp_sock_sendmsg,
	.recvmsg	= hsp_sock_recvmsg,
	.mmap		= sock_no_mmap,
#ifdef HSP_PROTO_OPS_HAS_SENDPAGE
	.sendpage	= sock_no_sendpage,
#endif
};

static DEFINE_PER_CPU(unsigned int, hsp_orphan_count);

struct proto hsp_prot = {
	.name		= "hsp",
	.owner		= THIS_MODULE,
	.close		= hsp_close,
	.pre_connect	= hsp_v4_pre_connect,
	.connect	= hsp_v4_connect,
	.disconnect	= hsp_disconnect,
	.accept		= inet_csk_accept,
	.init		= hsp_v4_init_sock,
	.destroy	= hsp_destroy_sock,
	.setsockopt	= hsp_setsockopt,
	.getsockopt	= hsp_getsockopt,
	.backlog_rcv	= hsp_do_rcv,
	.hash		= inet_hash,
	.unhash		= inet_unhash,
	.get_port	= inet_csk_get_port,
	/* __inet_bind() releases the port with it when post_bind4 refuses. */
	.put_port	= inet_put_port,
	.orphan_count	= &hsp_orphan_count,
	.max_header	= HSP_MAX_HEADER,
	.obj_size	= sizeof(struct hsp_sock),
	/* ehash lookups are RCU plus refcount_inc_not_zero(), as TCP's. */
	.slab_flags	= SLAB_TYPESAFE_BY_RCU,
	.rsk_prot	= &hsp_request_sock_ops,
	.h.hashinfo	= &hsp_hashinfo,
};
