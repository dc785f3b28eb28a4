/*
 * The I/O of MTA-STS (RFC 8461): fills the struct mtasts_io that the
 * mtasts/ resolver needs with DNS over proxy/dns.h, HTTPS over
 * proxy/stream.h and the system clock. It owns the lookups and fetches
 * under way; each fetch is bounded in time (STS_IO_FETCH_TIMEOUT_MS) and in
 * bytes (STS_IO_RESPONSE_MAX), and each TXT answer in records and bytes.
 */
#ifndef STS_IO_H
#define STS_IO_H

#include <stdint.h>
#include <uv.h>

#include "mtasts/http.h"

struct conf;
struct dns;
struct mtasts_io;
struct sts_io;
struct tls_ctx;

/* Time allowed for one policy fetch, from the address lookup to the end
   of the response (RFC 8461 section 3.3 suggests one minute). */
#define STS_IO_FETCH_TIMEOUT_MS (60 * 1000)
/* TXT records kept from one answer, and bytes in one record. An answer
   with more fails the lookup, because dropping records could hide a
   second STS record. */
#define STS_IO_TXT_RECORDS_MAX 16
#define STS_IO_TXT_RECORD_MAX 4096
/* Bytes of HTTP response read: the largest policy plus room for headers. */
#define STS_IO_RESPONSE_MAX (MTASTS_HTTP_BODY_MAX + 16 * 1024)

/*
 * Creates the MTA-STS I/O on loop. It borrows dns, tls and conf, which
 * must outlive it; tls needs tls.ca_file, or every certificate check
 * fails. At most conf's limits.max_addresses addresses of a policy host
 * are tried. Returns 0 and stores it in *out, or BASE_ENOMEM.
 */
int sts_io_new(uv_loop_t *loop, struct dns *dns, struct tls_ctx *tls,
	       const struct conf *conf, struct sts_io **out);

/*
 * Ends every lookup and fetch still under way. Each of their done
 * callbacks runs once, from inside this call, with BASE_ECANCELED, so that
 * mtasts_free can release its requests. No callback runs after it
 * returns. Call mtasts_free first, and call this before dns_free and
 * before the loop's handles are closed. The memory is released in libuv
 * close callbacks, so the loop must run once more. sts_io_free(NULL) does
 * nothing.
 */
void sts_io_free(struct sts_io *io);

/*
 * Returns the interface for mtasts_new; its arg is io. It stays valid
 * until sts_io_free.
 */
const struct mtasts_io *sts_io_table(struct sts_io *io);

/* Sets the time limit of later fetches, in milliseconds (for tests). */
void sts_io_set_fetch_timeout(struct sts_io *io, uint64_t ms);

/*
 * Returns why the fetch whose done callback is running failed, for
 * example "mta-sts.example.com[192.0.2.1]:443: certificate does not name
 * mta-sts.example.com". Inside the done callback of a TXT lookup, and of
 * a fetch that returned a response (status 0), it is "", because
 * mtasts_http_reason explains a rejected response. Outside done callbacks
 * it keeps the text of the latest failure.
 */
const char *sts_io_last_error(const struct sts_io *io);

#endif
