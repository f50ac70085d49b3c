// SPDX-License-Identifier: GPL-2.0
/*
 * The host policy of tests/test_hsp_policy.py: cgroup programs that refuse
 * everything, attached to a cgroup only the test's sockets were created in.
 * A protocol obeys them if its segments pass through the cgroup hooks TCP
 * passes through: sk_filter_trim_cap() on ingress, ip_finish_output() with
 * the sending socket on the skb on egress, and .pre_connect for connect4.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/ingress")
int deny_ingress(struct __sk_buff *skb)
{
	return 0;
}

SEC("cgroup_skb/egress")
int deny_egress(struct __sk_buff *skb)
{
	return 0;
}

/* 0 makes connect() fail with EPERM. */
SEC("cgroup/connect4")
int deny_connect4(struct bpf_sock_addr *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
