/*
 * err.c: descriptions of the project error enum and the errno mapping.
 * errno is converted once, at the system call, so callers only ever see
 * sl_err values.
 */
#include <errno.h>

#include "err.h"

const char *sl_strerror(int err)
{
	switch (err) {
	case SL_OK:
		return "success";
	case SL_EMALFORMED:
		return "malformed input";
	case SL_ETOOLARGE:
		return "too large";
	case SL_EVERSION:
		return "unsupported protocol version";
	case SL_EUNKNOWN_OP:
		return "unknown operation";
	case SL_ENOTOPIC:
		return "no such topic";
	case SL_ETOPIC_EXISTS:
		return "topic exists";
	case SL_EINVAL:
		return "invalid argument";
	case SL_EFULL:
		return "storage full";
	case SL_EUNAVAILABLE:
		return "unavailable";
	case SL_ENOSUB:
		return "no such subscription";
	case SL_EINTERNAL:
		return "internal error";
	case SL_EHANDSHAKE:
		return "handshake required";
	case SL_ERANGE:
		return "offset out of range";
	case SL_ETOOMANY:
		return "too many";
	case SL_EFENCED:
		return "an earlier publish of this producer must be retried first";
	case SL_ENOCONSUMER:
		return "no such consumer";
	case SL_ECONSUMER_EXISTS:
		return "consumer exists";
	case SL_EUNAUTHENTICATED:
		return "unauthenticated";
	case SL_EPERMISSION:
		return "permission denied";
	case SL_ENOMEM:
		return "out of memory";
	case SL_EIO:
		return "I/O error";
	case SL_EAGAIN:
		return "try again";
	case SL_ENOTFOUND:
		return "not found";
	case SL_ECORRUPT:
		return "corrupt data";
	case SL_ECLOSED:
		return "connection closed";
	case SL_ETIMEOUT:
		return "timed out";
	case SL_ECONFIG:
		return "configuration error";
	case SL_ETLS:
		return "TLS handshake failed (server certificate not trusted or for another name, or not a TLS server)";
	}
	return "unknown error";
}

int sl_err_from_errno(int e)
{
	switch (e) {
	case 0:
		return SL_OK;
	case ENOMEM:
		return SL_ENOMEM;
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINPROGRESS:
	case EINTR:
		return SL_EAGAIN;
	case ENOENT:
		return SL_ENOTFOUND;
	case ETIMEDOUT:
		return SL_ETIMEOUT;
	case EINVAL:
		return SL_EINVAL;
	case ENOSPC:
	case EDQUOT:
		return SL_EFULL;
	case EPIPE:
	case ECONNRESET:
	case ECONNABORTED:
	case ENOTCONN:
		return SL_ECLOSED;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EADDRNOTAVAIL:
		return SL_EUNAVAILABLE;
	case EMFILE:
	case ENFILE:
		return SL_ETOOMANY;
	case E2BIG:
	case EMSGSIZE:
	case EFBIG:
		return SL_ETOOLARGE;
	case ERANGE:
		return SL_ERANGE;
	case EBADMSG:
		return SL_EMALFORMED;
	}
	return SL_EIO;
}
