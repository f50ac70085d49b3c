/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * HSP: a handshake protocol on the kernel's inet_connection_sock queues.
 * Wire format and user-visible constants; Documentation/hsp.rst describes
 * the protocol.
 */
#ifndef _UAPI_LINUX_HSP_H
#define _UAPI_LINUX_HSP_H

#include <linux/types.h>

/* RFC 3692 experimental protocol number; the module parameter "proto" moves it. */
#define IPPROTO_HSP	253

#define HSP_FLAG_SYN	0x01
#define HSP_FLAG_ACK	0x02
#define HSP_FLAG_RST	0x04
#define HSP_FLAG_FIN	0x08
#define HSP_FLAGS_KNOWN	(HSP_FLAG_SYN | HSP_FLAG_ACK | HSP_FLAG_RST | HSP_FLAG_FIN)

/**
 * struct hsphdr - HSP header, 16 bytes, every field in network order
 * @source: source port
 * @dest: destination port
 * @seq: sequence number: the sender's ISN on SYN, ISN + 1 afterwards
 * @ack_seq: acknowledged sequence number, valid with %HSP_FLAG_ACK
 * @doff: header length in 32-bit words, at least 4
 * @flags: %HSP_FLAG_SYN, %HSP_FLAG_ACK, %HSP_FLAG_RST, %HSP_FLAG_FIN
 * @check: Internet checksum over an IPv4 pseudo-header (addresses,
 *	protocol, HSP length) and the whole HSP segment
 */
struct hsphdr {
	__be16	source;
	__be16	dest;
	__be32	seq;
	__be32	ack_seq;
	__u8	doff;
	__u8	flags;
	__sum16	check;
};

#endif /* _UAPI_LINUX_HSP_H */
