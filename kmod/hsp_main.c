// SPDX-License-Identifier: GPL-2.0
/*
 * HSP: a handshake protocol whose passive open runs through the kernel's own
 * listen machinery (request socks in HSP's ehash counted by
 * icsk_accept_queue.qlen, inet_csk_complete_hashdance(), inet_csk_accept()),
 * exactly as TCP's and DCCP's do. See Documentation/hsp.rst.
 *
 * Registration and its unwinding, the hash tables, per-netns state.
 */
#include <linux/module.h>
#include <linux/stringify.h>
#include <net/inet_common.h>
#include <net/inet_timewait_sock.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/protocol.h>

#include "hsp.h"

int hsp_protocol = IPPROTO_HSP;
module_param_named(proto, hsp_protocol, int, 0444);
MODULE_PARM_DESC(proto, "IP protocol number (default " __stringify(IPPROTO_HSP)
		 ", RFC 3692 experimental)");

int hsp_synack_retries;
module_param_named(synack_retries, hsp_synack_retries, int, 0644);
MODULE_PARM_DESC(synack_retries,
		 "SYN-ACK retransmissions before a request expires, for listeners created afterwards (0: net.ipv4.tcp_synack_retries of the namespace)");

int hsp_syn_retries;
module_param_named(syn_retries, hsp_syn_retries, int, 0644);
MODULE_PARM_DESC(syn_retries,
		 "SYN retransmissions before connect() fails with ETIMEDOUT, for sockets created afterwards (0: net.ipv4.tcp_syn_retries of the namespace)");

int hsp_fail_every;
module_param_named(fail_every, hsp_fail_every, int, 0644);
MODULE_PARM_DESC(fail_every,
		 "Fault injection for tests: fail every Nth request-sock or child allocation (0: never)");

int hsp_reset_rate = 1000;
module_param_named(reset_rate, hsp_reset_rate, int, 0644);
MODULE_PARM_DESC(reset_rate,
		 "Resets per second and namespace sent in answer to segments no socket takes, the rest dropped and counted (0: no limit)");

static atomic_t hsp_allocations = ATOMIC_INIT(0);

/**
 * hsp_should_fail_alloc() - whether fault injection fails this allocation
 *
 * Return: true every fail_every-th call while fail_every is positive.
 */
bool hsp_should_fail_alloc(void)
{
	int every = READ_ONCE(hsp_fail_every);

	return every > 0 && atomic_inc_return(&hsp_allocations) % every == 0;
}

unsigned int hsp_net_id __read_mostly;

#define HSP_EHASH_SIZE	4096
#define HSP_BHASH_SIZE	1024

struct inet_hashinfo hsp_hashinfo;

struct inet_timewait_death_row hsp_death_row = {
	.tw_refcount	= REFCOUNT_INIT(1),
	.hashinfo	= &hsp_hashinfo,
};

static struct inet_protosw hsp_protosw = {
	.type		= SOCK_STREAM,
	.protocol	= IPPROTO_HSP,
	.prot		= &hsp_prot,
	.ops		= &hsp_inet_ops,
	.flags		= INET_PROTOSW_ICSK,
};

static int hsp_hashinfo_init(struct inet_hashinfo *h)
{
	unsigned int i;
	int err;

	err = inet_hashinfo2_init_mod(h);
	if (err)
		return err;
	err = -ENOMEM;
	h->bind_bucket_cachep =
		kmem_cache_create("hsp_bind_bucket",
				  sizeof(struct inet_bind_bucket), 0,
				  SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT, NULL);
	if (!h->bind_bucket_cachep)
		goto out_free_lhash2;
	h->bind2_bucket_cachep =
		kmem_cache_create("hsp_bind2_bucket",
				  sizeof(struct inet_bind2_bucket), 0,
				  SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT, NULL);
	if (!h->bind2_bucket_cachep)
		goto out_destroy_bind_bucket_cache;

	h->ehash = kvmalloc_array(HSP_EHASH_SIZE, sizeof(*h->ehash),
				  GFP_KERNEL);
	if (!h->ehash)
		goto out_destroy_bind2_bucket_cache;
	h->ehash_mask = HSP_EHASH_SIZE - 1;
	for (i = 0; i < HSP_EHASH_SIZE; i++)
		INIT_HLIST_NULLS_HEAD(&h->ehash[i].chain, i);
	if (inet_ehash_locks_alloc(h))
		goto out_free_ehash;

	h->bhash = kvmalloc_array(HSP_BHASH_SIZE, sizeof(*h->bhash),
				  GFP_KERNEL);
	if (!h->bhash)
		goto out_free_ehash_locks;
	h->bhash2 = kvmalloc_array(HSP_BHASH_SIZE, sizeof(*h->bhash2),
				   GFP_KERNEL);
	if (!h->bhash2)
		goto out_free_bhash;
	h->bhash_size = HSP_BHASH_SIZE;
	for (i = 0; i < HSP_BHASH_SIZE; i++) {
		spin_lock_init(&h->bhash[i].lock);
		INIT_HLIST_HEAD(&h->bhash[i].chain);
		spin_lock_init(&h->bhash2[i].lock);
		INIT_HLIST_HEAD(&h->bhash2[i].chain);
	}
	h->pernet = false;
	return 0;

out_free_bhash:
	kvfree(h->bhash);
out_free_ehash_locks:
	inet_ehash_locks_free(h);
out_free_ehash:
	kvfree(h->ehash);
out_destroy_bind2_bucket_cache:
	kmem_cache_destroy(h->bind2_bucket_cachep);
out_destroy_bind_bucket_cache:
	kmem_cache_destroy(h->bind_bucket_cachep);
out_free_lhash2:
	inet_hashinfo2_free_mod(h);
	return err;
}

static void hsp_hashinfo_free(struct inet_hashinfo *h)
{
	kvfree(h->bhash2);
	kvfree(h->bhash);
	inet_ehash_locks_free(h);
	kvfree(h->ehash);
	kmem_cache_destroy(h->bind2_bucket_cachep);
	kmem_cache_destroy(h->bind_bucket_cachep);
	inet_hashinfo2_free_mod(h);
}

static int __net_init hsp_net_init(struct net *net)
{
	struct hsp_net *hn = hsp_pernet(net);
	int err;

	spin_lock_init(&hn->reset_lock);
	err = inet_ctl_sock_create(&hn->ctl_sk, PF_INET, SOCK_RAW, hsp_protocol,
				   net);
	if (err)
		return err;
	err = hsp_proc_init_net(net);
	if (err)
		goto out_destroy_ctl_sk;
	return 0;

out_destroy_ctl_sk:
	inet_ctl_sock_destroy(hn->ctl_sk);
	return err;
}

static void __net_exit hsp_net_exit(struct net *net)
{
	hsp_proc_exit_net(net);
	inet_ctl_sock_destroy(hsp_pernet(net)->ctl_sk);
}

/*
 * No .exit_batch: HSP creates no timewait socks, so there is nothing for
 * inet_twsk_purge() to do, and a dying namespace has no sockets left (each
 * holds a reference to it) nor requests (each holds its listener).
 */
static struct pernet_operations hsp_net_ops = {
	.init		= hsp_net_init,
	.exit		= hsp_net_exit,
	.id		= &hsp_net_id,
	.size		= sizeof(struct hsp_net),
};

static int __init hsp_init(void)
{
	int err;

	BUILD_BUG_ON(sizeof(struct hsphdr) != 16);
	/* The IP header's protocol field is 8 bits (inet_protos[] has 256). */
	if (hsp_protocol <= 0 || hsp_protocol >= MAX_INET_PROTOS ||
	    hsp_protocol == IPPROTO_RAW) {
		pr_err("hsp: proto=%d is not an IP protocol number from 1 to 254\n",
		       hsp_protocol);
		return -EINVAL;
	}
	hsp_protosw.protocol = hsp_protocol;

	err = hsp_hashinfo_init(&hsp_hashinfo);
	if (err)
		return err;
	err = proto_register(&hsp_prot, 1);
	if (err)
		goto out_free_hashinfo;
	err = register_pernet_subsys(&hsp_net_ops);
	if (err)
		goto out_unregister_proto;
	/*
	 * Taking the IP protocol's handler slot is what proves the number
	 * free (a stream protosw of another protocol has a handler too);
	 * from here on segments arrive.
	 */
	if (inet_add_protocol(&hsp_net_protocol, hsp_protocol)) {
		pr_err("hsp: IP protocol %d is taken\n", hsp_protocol);
		err = -EBUSY;
		goto out_unregister_pernet;
	}
	/* Last, as it cannot fail: from here on users create sockets. */
	inet_register_protosw(&hsp_protosw);
	return 0;

out_unregister_pernet:
	unregister_pernet_subsys(&hsp_net_ops);
out_unregister_proto:
	proto_unregister(&hsp_prot);
out_free_hashinfo:
	hsp_hashinfo_free(&hsp_hashinfo);
	return err;
}

static void __exit hsp_exit(void)
{
	inet_unregister_protosw(&hsp_protosw);
	inet_del_protocol(&hsp_net_protocol, hsp_protocol);
	unregister_pernet_subsys(&hsp_net_ops);
	proto_unregister(&hsp_prot);
	hsp_hashinfo_free(&hsp_hashinfo);
}

module_init(hsp_init);
module_exit(hsp_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("qwatch + HSP developers");
MODULE_DESCRIPTION("HSP: a handshake protocol on the inet_connection_sock queues");
