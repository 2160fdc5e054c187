/*
 * fe_tls.c: the server side of TLS on the client listeners (see fe_tls.h).
 *
 * Every frontend builds its own SSL_CTX after fork (tls_server_ctx_new,
 * common/tls.c), from the files named in [tls]; the master builds one first
 * only to refuse a bad file before any child starts. TLS 1.2 is the floor
 * (1.0 and 1.1 are refused in the handshake); tls.ciphers restricts TLS 1.2
 * only, TLS 1.3 keeps OpenSSL's suites, which are all AEAD with forward
 * secrecy.
 *
 * Caveats:
 * - Clients that close without a close_notify (most HTTP clients) are
 *   normal: dirty shutdowns are allowed, the connection simply ends.
 * - Session tickets and caches are per process, so a client resuming on
 *   another frontend of the node makes a full handshake; nothing breaks.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "err.h"
#include "fe_tls.h"

void fe_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

struct bufferevent *fe_tls_bev_new(struct event_base *base, int fd, SSL_CTX *ctx)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (!ctx)
		return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!(ssl = SSL_new(ctx)))
		return NULL;
	bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl); /* libevent leaves it to us when it fails */
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

void fe_tls_shutdown_write(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);

	/* the output is flushed, so the alert goes out after the last record;
	 * a full socket buffer (WANT_WRITE) only loses the alert, not data */
	if (ssl && SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
	shutdown(bufferevent_getfd(bev), SHUT_WR);
}
