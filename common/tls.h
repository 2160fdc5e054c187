/*
 * tls.h: the OpenSSL contexts of a node, built from the [tls] files.
 *
 * Client listeners (the frontends) take a server context: the node's
 * certificate and key, TLS 1.2 at least, no client certificate asked for.
 * Peer links (the logwriter) take one context for mutual TLS: each
 * side presents its node certificate and requires one from the other side,
 * issued by the cluster CA, that names the other node's id in a
 * subjectAltName URI "sluice:node:<id>" (tls_cert_node_id). The peer files
 * are [tls] peer_cert, peer_key and peer_ca, each defaulting to cert, key and
 * ca, so one certificate per node can serve both (its extendedKeyUsage must
 * then allow serverAuth and clientAuth).
 *
 * Every builder checks its files and says which one is wrong and why in err
 * (SL_ECONFIG), so a node refuses to start on files it could not use.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct x509_st;    /* OpenSSL's X509 */

/* The URI prefix that binds a certificate to a node id. */
#define TLS_NODE_URI_PREFIX "sluice:node:"

/* A server context for the client listeners: TLS 1.2 at least, the TLS 1.2
 * cipher list of tls.ciphers, the certificate chain and key (which must
 * match), and with tls.ca the certificate checked against that CA (the chain
 * sent then carries its intermediates). *out is the caller's (SSL_CTX_free).
 * With no tls.cert, *out is NULL and SL_OK. */
int tls_server_ctx_new(const struct config *cfg, struct ssl_ctx_st **out, char *err, size_t errlen);

/* 1 when the node's peer links speak TLS: it is in a cluster and has a peer
 * certificate (tls.peer_cert, or tls.cert). */
int tls_peer_enabled(const struct config *cfg);

/* The context of mutual TLS on peer links, for both the links this node
 * accepts and the ones it dials (TLS_method): it presents the node's peer
 * certificate and requires the other side's, verified against the peer CA.
 * Refused (SL_ECONFIG, err says why): no peer CA, a certificate that does not
 * chain to it, that does not name this node (cfg->node_id), or that may not
 * act as TLS server and client. With tls_peer_enabled false *out is NULL
 * and SL_OK. */
int tls_peer_ctx_new(const struct config *cfg, struct ssl_ctx_st **out, char *err, size_t errlen);

/* The node id a certificate names in its subjectAltName URI
 * "sluice:node:<id>": SL_OK with *id; SL_ENOTFOUND when it names none;
 * SL_EINVAL when it names more than one id or a malformed one. */
int tls_cert_node_id(struct x509_st *cert, uint32_t *id);

#endif
