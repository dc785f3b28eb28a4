/* Descriptions of the shared error codes. */
#include "err.h"

const char *base_strerror(int err)
{
	switch (err) {
	case BASE_OK: return "success";
	case BASE_ENOMEM: return "out of memory";
	case BASE_EINVAL: return "invalid value";
	case BASE_ETOOLONG: return "line or buffer limit exceeded";
	case BASE_EPROTO: return "protocol error";
	case BASE_EIO: return "input/output error";
	case BASE_ETIMEDOUT: return "timed out";
	case BASE_ECONNREFUSED: return "connection refused";
	case BASE_EUNREACH: return "network unreachable";
	case BASE_ETLS: return "TLS failure";
	case BASE_EVERIFY: return "certificate verification failed";
	case BASE_EDNS: return "DNS lookup failed";
	case BASE_ENOTFOUND: return "not found";
	case BASE_EEOF: return "connection closed by peer";
	case BASE_ECANCELED: return "canceled";
	case BASE_EINJECT: return "data injected before the TLS handshake";
	case BASE_ESYS: return "system error";
	}
	return "unknown error";
}
