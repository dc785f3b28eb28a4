/*
 * Error codes shared by every module of mxlock. Functions return 0 on
 * success or one of these negative values. Foreign codes (errno, libuv,
 * wolfSSL, c-ares) are translated at the boundary of the module that calls
 * the library, one function per library. This header includes nothing of
 * the project, so tlsa/, mtasts/ and conf/ may use it.
 */
#ifndef BASE_ERR_H
#define BASE_ERR_H

enum base_err {
	BASE_OK = 0,
	BASE_ENOMEM = -1,	/* allocation failed */
	BASE_EINVAL = -2,	/* invalid argument or value */
	BASE_ETOOLONG = -3,	/* a bounded buffer or line limit was exceeded */
	BASE_EPROTO = -4,	/* the peer broke the protocol */
	BASE_EIO = -5,		/* read or write failed */
	BASE_ETIMEDOUT = -6,	/* a timer expired */
	BASE_ECONNREFUSED = -7,	/* the peer refused the connection */
	BASE_EUNREACH = -8,	/* no route to the peer */
	BASE_ETLS = -9,		/* TLS handshake or record layer failed */
	BASE_EVERIFY = -10,	/* the peer's certificate failed verification */
	BASE_EDNS = -11,	/* a DNS lookup failed (temporary) */
	BASE_ENOTFOUND = -12,	/* a name or item does not exist */
	BASE_EEOF = -13,	/* the peer closed the connection */
	BASE_ECANCELED = -14,	/* the operation was canceled */
	BASE_EINJECT = -15,	/* bytes arrived between STARTTLS and the handshake */
	BASE_ESYS = -16,	/* another system error */
};

/* Returns a short English description of a base_err value. */
const char *base_strerror(int err);

#endif
