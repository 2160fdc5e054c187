/*
 * harness.h: shared helpers for the integration tests. They run the real
 * binaries: sluiced on a free loopback port with a temporary data directory,
 * the sluice CLI with captured stdin/stdout/stderr, and raw native-protocol
 * connections for tests that must see exact frames.
 *
 * Caveats: every wait is bounded. sluiced is started with PR_SET_PDEATHSIG so
 * a crashed test process does not leave servers behind; call
 * itest_node_destroy from criterion's fini so a failed assertion still stops
 * everything and removes the data directory. Call node start/stop from the
 * test's main thread only (the death signal follows the forking thread).
 */
#ifndef SLUICE_ITEST_HARNESS_H
#define SLUICE_ITEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sluice.pb-c.h"

#define ITEST_READY_MS 10000
#define ITEST_STOP_MS 10000

struct itest_node {
	pid_t pid; /* master pid; 0 when not running */
	uint16_t port;
	uint16_t http_port; /* HTTP listener ([listen] http) */
	uint32_t frontends;
	char dir[128]; /* temp root holding data/ and sluiced.log */
	char data_dir[160];
	char log_path[160];
	char addr[64]; /* "127.0.0.1:PORT", for libsluice and the CLI */
	const char *extra[9]; /* more sluiced flags (NULL-terminated), e.g. "--map-bytes", "2m" */
};

/* Monotonic milliseconds, and a sleep that resumes after signals. */
long long itest_now_ms(void);
void itest_sleep_ms(int ms);

/* A loopback port that was free a moment ago (bind port 0, read, close). */
int itest_free_port(uint16_t *port);

/* Make the temp dir and choose a port; does not start anything. */
int itest_node_init(struct itest_node *n);
/* Spawn sluiced on n's dir and port, then wait until it serves (bounded). */
int itest_node_start(struct itest_node *n);
int itest_node_spawn(struct itest_node *n);
/* Wait until the port accepts and a NodeStatus is answered. */
int itest_node_wait_ready(const struct itest_node *n, int timeout_ms);
/* SIGTERM and wait ITEST_STOP_MS. Returns 0 if the master exited with status 0
 * in time; otherwise it is SIGKILLed and -1 is returned. */
int itest_node_stop(struct itest_node *n);
/* kill -9 the master, reap it and wait until its children are gone. Returns 0
 * if every child went away within ITEST_STOP_MS. */
int itest_node_kill9(struct itest_node *n);
/* Stop whatever runs (SIGTERM, SIGKILL after ITEST_STOP_MS) and remove the
 * temp dir (kept when $ITEST_KEEP is set). Idempotent. */
void itest_node_destroy(struct itest_node *n);
/* Print the last bytes of the server log to stderr (for failing tests). */
void itest_node_dump_log(const struct itest_node *n);

/* Children of a process (from /proc/<pid>/task/<pid>/children). */
size_t itest_children(pid_t parent, pid_t *out, size_t max);
/* The child of parent whose /proc/PID/comm equals comm, or 0. */
pid_t itest_child_by_comm(pid_t parent, const char *comm);
/* 1 if pid exists and is not a zombie. */
int itest_pid_alive(pid_t pid);
int itest_wait_gone(pid_t pid, int timeout_ms);

/* Run a program: argv[0] is the path. SLUICE_SERVER is set to server when not
 * NULL. stdin comes from in_path if given, else from in/in_len (may be empty).
 * status is the exit code, 128+signal if killed, -1 on timeout. */
struct itest_run {
	int status;
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
};
int itest_run(const char *const *argv, const char *server, const char *in_path, const void *in, size_t in_len,
              int timeout_ms, struct itest_run *r);
void itest_run_free(struct itest_run *r);

/* Raw native protocol. */
int itest_connect(uint16_t port);
int itest_send_raw(int fd, const void *p, size_t n);
int itest_send_frame(int fd, const Sluice__Frame *f);
/* 0 with *out (free with sluice__frame__free_unpacked(*out, NULL)); SL_ECLOSED
 * on EOF or reset; SL_ETIMEOUT; SL_EMALFORMED if the server sent junk. */
int itest_recv_frame(int fd, int timeout_ms, Sluice__Frame **out);
/* Send Hello(1,1) and expect HelloOk. */
int itest_hello(int fd);
/* One request/response exchange helpers for raw tests. */
int itest_send_node_status(int fd, uint64_t id);
/* Connect, Hello, NodeStatus; 0 if a NodeStatusResult came back in time. */
int itest_node_status_raw(uint16_t port, int timeout_ms);
/* Wait for our child with a deadline; returns 1 and fills status if reaped. */
int itest_wait_child(pid_t pid, int timeout_ms, int *status);
/* Connect, Hello, NodeStatus; copies the counters of interest. */
int itest_node_status_get(uint16_t port, uint32_t *logwriter_restarts, uint32_t *frontend_restarts, uint32_t *topics);
/* Wait for a response with the given id, skipping deliveries (id 0). */
int itest_recv_response(int fd, uint64_t id, int timeout_ms, Sluice__Frame **out);

struct sluice_sync;
struct sluice_msg;
struct sluice_pub;
struct sluice_header;
/* Fill *p (zeroed first) for a publish; partition < 0 lets the server
 * choose, key NULL for none; the strings and headers stay the caller's. */
void itest_pub_fill(struct sluice_pub *p, const char *topic, int partition, const char *key, const char *payload,
                    const struct sluice_header *hs, size_t hs_n);
/* Fetch one partition from offset 0 to its end, page_max messages a page,
 * passing every message to fn. *end_out is the end offset the server
 * reported. 0, or the sluice_sync_fetch error (message in em). */
int itest_fetch_all(struct sluice_sync *sy, const char *topic, uint32_t part, uint32_t page_max,
                    void (*fn)(void *arg, const struct sluice_msg *m), void *arg, uint64_t *end_out, char *em,
                    size_t emlen);

struct event_base;
/* Run base's loop (polling at least every 10 ms) until *count >= want or
 * timeout_ms passes: 0, or -1 on timeout. */
int itest_loop_until(struct event_base *base, const size_t *count, size_t want, int timeout_ms);
/* Run base's loop for ms milliseconds. */
void itest_loop_for(struct event_base *base, int ms);

/* Send CreateTopic and wait for Ok: 0, or the Error frame's code, or an sl_err. */
int itest_raw_create_topic(int fd, uint64_t id, const char *name, uint32_t partitions);
/* Send a Publish; partition < 0 lets the server choose. */
int itest_raw_send_publish(int fd, uint64_t id, const char *topic, int partition, const void *payload, size_t len,
                           uint64_t producer_id, uint64_t sequence);
/* Send a PublishBatch of count records (the PublishBatch.records layout,
 * common/pubbatch.h) to partition and wait for its ack: 0 with the base
 * offset, or the Error code, or an sl_err. */
int itest_raw_publish_batch(int fd, uint64_t id, const char *topic, uint32_t partition, const uint8_t *records,
                            size_t len, uint32_t count, uint64_t *base_out);
/* Wait for the response to id: 0 with the ack, or the Error code, or an sl_err. */
int itest_raw_wait_ack(int fd, uint64_t id, int timeout_ms, uint32_t *partition, uint64_t *offset, int *duplicate);

/* ---------- HTTP/1.1 over a raw socket (http_test.c, http_consumer_test.c) ---------- */

/* One response: status, head (status line and headers, CRLFs included) and
 * body (malloc'd, NUL-terminated; free with itest_http_resp_free). */
struct itest_http_resp {
	int status;
	char head[4096];
	char *body;
	size_t body_len;
};
/* A connection with its unread bytes. */
struct itest_http_conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};
/* Connect to port on loopback: 0, or -1. */
int itest_http_open(struct itest_http_conn *c, uint16_t port);
int itest_http_send(struct itest_http_conn *c, const char *s, size_t n);
/* Read more bytes (bounded wait): how many, 0 on EOF, timeout or a full buffer. */
size_t itest_http_fill(struct itest_http_conn *c, int timeout_ms);
/* Drop the first n buffered bytes. */
void itest_http_consume(struct itest_http_conn *c, size_t n);
/* One response with a Content-Length (every answer but event streams),
 * within 10 s however long the server is silent (long polls): 0, or -1 on
 * EOF or the deadline. */
int itest_http_response(struct itest_http_conn *c, struct itest_http_resp *r);
/* 1 if the server closed the connection (EOF) within 10 s. */
int itest_http_closed(struct itest_http_conn *c);
/* Send raw (a whole request) on a new connection, read one response, close: 0, or -1. */
int itest_http_request(uint16_t port, const char *raw, struct itest_http_resp *r);
/* The same for METHOD PATH with extra header lines hdrs ("Name: v\r\n"...) and body. */
int itest_http_simple(uint16_t port, const char *method, const char *path, const char *hdrs, const char *body,
                      struct itest_http_resp *r);
void itest_http_resp_free(struct itest_http_resp *r);

#endif
