/*
 * fe_tls.c: the server side of TLS on the client listeners (see fe_tls.h).
 *
 * Every frontend builds its own SSL_CTX after fork, from the files named in
 * [tls]; the master builds one first only to refuse a bad file before any
 * child starts. TLS 1.2 is the floor (1.0 and 1.1 are refused in the
 * handshake); tls.ciphers restricts TLS 1.2 only, TLS 1.3 keeps OpenSSL's
 * suites, which are all AEAD with forward secrecy.
 *
 * Caveats:
 * - The listeners never ask clients for a certificate: a browser would then
 *   prompt its user to pick one. tls.ca serves to check, at start and on
 *   reload, that the node's certificate chains to the CA the clients are
 *   told to trust, and to complete the chain sent with intermediates.
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

/* "WHAT FILE: why" from the OpenSSL error queue (then emptied). */
static int tls_fail(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	snprintf(err, errlen, "%s %s: %s", what, file, why ? why : "not usable");
	ERR_clear_error();
	return SL_ECONFIG;
}

/* A missing or unreadable file says so plainly, not as an OpenSSL reason. */
static int file_readable(const char *what, const char *file, char *err, size_t errlen)
{
	if (access(file, R_OK) == 0)
		return SL_OK;
	snprintf(err, errlen, "%s %s: cannot read: %s", what, file, strerror(errno));
	return SL_ECONFIG;
}

static int load_cert_and_key(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	if (file_readable("tls.cert", cfg->tls_cert, err, errlen) || file_readable("tls.key", cfg->tls_key, err, errlen))
		return SL_ECONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
		return tls_fail(err, errlen, "tls.cert: no PEM certificate in", cfg->tls_cert);
	/* OpenSSL refuses a key that does not match while loading it: say that */
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
		return tls_fail(err, errlen, "tls.key: no PEM private key in", cfg->tls_key);
	if (ERR_peek_last_error() || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls.key %s does not match the certificate of tls.cert %s", cfg->tls_key,
			 cfg->tls_cert);
		ERR_clear_error();
		return SL_ECONFIG;
	}
	return SL_OK;
}

/* The certificate must chain to tls.ca; the chain sent then carries any
 * intermediate from either file, but not the root (clients have it). */
static int check_ca(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
	if (file_readable("tls.ca", cfg->tls_ca, err, errlen))
		return SL_ECONFIG;
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
		return tls_fail(err, errlen, "tls.ca: no PEM certificate in", cfg->tls_ca);
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_UNTRUSTED) != 1) {
		snprintf(err, errlen, "tls.cert %s is not issued by a CA of tls.ca %s", cfg->tls_cert, cfg->tls_ca);
		ERR_clear_error();
		return SL_ECONFIG;
	}
	return SL_OK;
}

int fe_tls_ctx_new(const struct config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	SSL_CTX *ctx = NULL;
	int rc = SL_OK;

	*out = NULL;
	if (!cfg->tls_cert[0])
		goto done;
	rc = SL_ENOMEM;
	if (!(ctx = SSL_CTX_new(TLS_server_method()))) {
		snprintf(err, errlen, "cannot create a TLS context");
		goto done;
	}
	rc = SL_ECONFIG;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2");
		goto done;
	}
	/* the server picks from its own order; no renegotiation (a DoS lever) */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* idle connections (event streams, WebSockets) give their buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		snprintf(err, errlen, "tls.ciphers: no usable TLS 1.2 cipher in '%s'", cfg->tls_ciphers);
		ERR_clear_error();
		goto done;
	}
	if (load_cert_and_key(ctx, cfg, err, errlen) != SL_OK)
		goto done;
	if (cfg->tls_ca[0] && check_ca(ctx, cfg, err, errlen) != SL_OK)
		goto done;
	*out = ctx;
	ctx = NULL;
	rc = SL_OK;
done:
	SSL_CTX_free(ctx);
	return rc;
}

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
