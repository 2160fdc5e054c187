/*
 * err.h: the one error enum of the project. 0 is success. Values below 100
 * match the wire ErrorCode in proto/sluice.proto so a storage or logwriter
 * error can be sent to a client unchanged; values from 100 are local.
 * errno is converted at the system call (sl_err_from_errno).
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

enum sl_err {
	SL_OK = 0,
	SL_EMALFORMED = 1,
	SL_ETOOLARGE = 2,
	SL_EVERSION = 3,
	SL_EUNKNOWN_OP = 4,
	SL_ENOTOPIC = 5,
	SL_ETOPIC_EXISTS = 6,
	SL_EINVAL = 7,
	SL_EFULL = 8,          /* storage map full */
	SL_EUNAVAILABLE = 9,
	SL_ENOSUB = 10,
	SL_EINTERNAL = 11,
	SL_EHANDSHAKE = 12,
	SL_ERANGE = 13,
	SL_ETOOMANY = 14,
	SL_EFENCED = 15,       /* publish refused before reaching the log: retry the earlier one first */
	SL_ENOCONSUMER = 16,   /* no durable consumer of that name */
	SL_ECONSUMER_EXISTS = 17,
	SL_EUNAUTHENTICATED = 18, /* no credentials, or a token or signature that does not verify */
	SL_EPERMISSION = 19,      /* authenticated, but the principal may not do this */
	SL_WIRE_MAX = 99,      /* codes up to here are wire ErrorCodes; sl_err_is_wire() */

	SL_ENOMEM = 100,
	SL_EIO = 101,
	SL_EAGAIN = 102,       /* ring full / would block: try later */
	SL_ENOTFOUND = 103,
	SL_ECORRUPT = 104,     /* checksum mismatch or impossible on-disk record */
	SL_ECLOSED = 105,      /* peer closed the connection */
	SL_ETIMEOUT = 106,
	SL_ECONFIG = 107,
	SL_ETLS = 108,         /* TLS handshake failed: certificate not trusted, wrong name, not a TLS server */
};

/* 1 if err is an answer for a client (a wire ErrorCode), 0 if it is local
 * (an allocation, I/O or storage failure that must not be sent as is). */
static inline int sl_err_is_wire(int err)
{
	return err > SL_OK && err <= SL_WIRE_MAX;
}

/* Short static description of an error; never NULL. */
const char *sl_strerror(int err);

/* Map an errno value to an sl_err. */
int sl_err_from_errno(int e);

#endif
