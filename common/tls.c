/*
 * tls.c: the node's OpenSSL contexts (tls.h).
 *
 * Caveats:
 * - Client listeners never ask for a client certificate: a browser would
 *   then prompt its user to pick one. tls.ca serves there to check, at start
 *   and on reload, that the node's certificate chains to the CA the clients
 *   are told to trust, and to complete the chain sent with intermediates.
 * - Peer links check no host name: the cluster CA vouches for the
 *   certificate and the node id in it says which node it is, which is what
 *   peer.c compares with the node it dialled or the hello it read.
 * - Session tickets are off on peer links (a link lives long; a resumed
 *   session would skip the client certificate check's freshness for nothing).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "err.h"
#include "tls.h"

/* The files one context is made of, and the names they go by in messages. */
struct tls_files {
	const char *cert, *key, *ca;
	const char *cert_name, *key_name, *ca_name;
};

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

static int load_cert_and_key(SSL_CTX *ctx, const struct tls_files *f, char *err, size_t errlen)
{
	char what[64];

	if (file_readable(f->cert_name, f->cert, err, errlen) || file_readable(f->key_name, f->key, err, errlen))
		return SL_ECONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		snprintf(what, sizeof(what), "%s: no PEM certificate in", f->cert_name);
		return tls_fail(err, errlen, what, f->cert);
	}
	/* OpenSSL refuses a key that does not match while loading it: say that */
	if (SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
		snprintf(what, sizeof(what), "%s: no PEM private key in", f->key_name);
		return tls_fail(err, errlen, what, f->key);
	}
	if (ERR_peek_last_error() || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s %s does not match the certificate of %s %s", f->key_name, f->key,
			 f->cert_name, f->cert);
		ERR_clear_error();
		return SL_ECONFIG;
	}
	return SL_OK;
}

/* The certificate must chain to the CA file; the chain sent then carries
 * any intermediate from either file, but not the root (the other side has it). */
static int check_ca(SSL_CTX *ctx, const struct tls_files *f, char *err, size_t errlen)
{
	char what[64];

	if (file_readable(f->ca_name, f->ca, err, errlen))
		return SL_ECONFIG;
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
		snprintf(what, sizeof(what), "%s: no PEM certificate in", f->ca_name);
		return tls_fail(err, errlen, what, f->ca);
	}
	if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_UNTRUSTED) != 1) {
		snprintf(err, errlen, "%s %s is not issued by a CA of %s %s", f->cert_name, f->cert, f->ca_name, f->ca);
		ERR_clear_error();
		return SL_ECONFIG;
	}
	return SL_OK;
}

/* A context of method's roles with what every context shares: TLS 1.2 at
 * least, the cipher list, no renegotiation or compression, and the
 * certificate. */
static int ctx_base(const struct config *cfg, const SSL_METHOD *method, const struct tls_files *f, SSL_CTX **out,
		    char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	*out = NULL;
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context");
		return SL_ENOMEM;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot require TLS 1.2");
		goto fail;
	}
	/* a server picks from its own order; no renegotiation (a DoS lever) */
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		snprintf(err, errlen, "tls.ciphers: no usable TLS 1.2 cipher in '%s'", cfg->tls_ciphers);
		ERR_clear_error();
		goto fail;
	}
	if (load_cert_and_key(ctx, f, err, errlen) != SL_OK)
		goto fail;
	if (f->ca[0] && check_ca(ctx, f, err, errlen) != SL_OK)
		goto fail;
	*out = ctx;
	return SL_OK;
fail:
	SSL_CTX_free(ctx);
	return SL_ECONFIG;
}

int tls_server_ctx_new(const struct config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	const struct tls_files f = {cfg->tls_cert, cfg->tls_key, cfg->tls_ca, "tls.cert", "tls.key", "tls.ca"};
	int rc;

	*out = NULL;
	if (!cfg->tls_cert[0])
		return SL_OK;
	if ((rc = ctx_base(cfg, TLS_server_method(), &f, out, err, errlen)) != SL_OK)
		return rc;
	/* idle connections (event streams, WebSockets) give their buffers back */
	SSL_CTX_set_mode(*out, SSL_MODE_RELEASE_BUFFERS);
	return SL_OK;
}

/* The peer files: peer_* where set, else the client listeners' files. */
static struct tls_files peer_files(const struct config *cfg)
{
	struct tls_files f;

	f.cert = cfg->tls_peer_cert[0] ? cfg->tls_peer_cert : cfg->tls_cert;
	f.cert_name = cfg->tls_peer_cert[0] ? "tls.peer_cert" : "tls.cert";
	f.key = cfg->tls_peer_cert[0] ? cfg->tls_peer_key : cfg->tls_key;
	f.key_name = cfg->tls_peer_cert[0] ? "tls.peer_key" : "tls.key";
	f.ca = cfg->tls_peer_ca[0] ? cfg->tls_peer_ca : cfg->tls_ca;
	f.ca_name = cfg->tls_peer_ca[0] ? "tls.peer_ca" : "tls.ca";
	return f;
}

int tls_peer_enabled(const struct config *cfg)
{
	return cfg->cluster_n > 0 && (cfg->tls_peer_cert[0] || cfg->tls_cert[0]);
}

int tls_cert_node_id(X509 *cert, uint32_t *id)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const size_t plen = sizeof(TLS_NODE_URI_PREFIX) - 1;
	uint32_t found = 0;
	int rc = SL_ENOTFOUND;

	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type != GEN_URI)
			continue;
		const char *s = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		size_t len = (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len <= plen || len > plen + 10 || strncmp(s, TLS_NODE_URI_PREFIX, plen) != 0)
			continue;
		unsigned long long v = 0;
		size_t k = plen;
		while (k < len && s[k] >= '0' && s[k] <= '9')
			v = v * 10 + (unsigned)(s[k++] - '0');
		if (k != len || v == 0 || v > UINT32_MAX || (found && found != v)) {
			rc = SL_EINVAL;
			break;
		}
		found = (uint32_t)v;
		rc = SL_OK;
	}
	GENERAL_NAMES_free(names);
	if (rc == SL_OK)
		*id = found;
	return rc;
}

/* The node certificate of a peer context: it names this node, and may act
 * as TLS server (links accepted) and client (links dialled). */
static int check_node_cert(SSL_CTX *ctx, const struct config *cfg, const struct tls_files *f, char *err,
			   size_t errlen)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	uint32_t id = 0;
	int rc = cert ? tls_cert_node_id(cert, &id) : SL_ENOTFOUND;

	if (rc != SL_OK || id != cfg->node_id) {
		snprintf(err, errlen,
			 "%s %s must name this node: subjectAltName URI:" TLS_NODE_URI_PREFIX "%u (it %s) for peer links",
			 f->cert_name, f->cert, cfg->node_id,
			 rc == SL_ENOTFOUND ? "names no node" : rc ? "names more than one node" : "names another node");
		return SL_ECONFIG;
	}
	if (X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) != 1 ||
	    X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) != 1) {
		snprintf(err, errlen,
			 "%s %s cannot serve peer links: its extendedKeyUsage must allow both serverAuth and clientAuth",
			 f->cert_name, f->cert);
		return SL_ECONFIG;
	}
	return SL_OK;
}

int tls_peer_ctx_new(const struct config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	const struct tls_files f = peer_files(cfg);
	int rc;

	*out = NULL;
	if (!tls_peer_enabled(cfg))
		return SL_OK;
	if (!f.ca[0]) {
		snprintf(err, errlen,
			 "peer links speak TLS (%s is set) and need the cluster CA that issued every node's certificate: "
			 "set tls.ca (or tls.peer_ca)", f.cert_name);
		return SL_ECONFIG;
	}
	/* one context for both ends: links accepted and links dialled */
	if ((rc = ctx_base(cfg, TLS_method(), &f, out, err, errlen)) == SL_OK)
		rc = check_node_cert(*out, cfg, &f, err, errlen);
	if (rc != SL_OK) {
		SSL_CTX_free(*out);
		*out = NULL;
		return rc;
	}
	/* the other side must present a certificate from the cluster CA */
	SSL_CTX_set_verify(*out, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_options(*out, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(*out, 0);
	SSL_CTX_set_session_cache_mode(*out, SSL_SESS_CACHE_OFF);
	return SL_OK;
}
