/*
 * mec-delayline: the compiled userspace delay line (see topologies/delayline.py for
 * the Python line it replaces where it can be built, and docs/design.md "Links").
 *
 * Holds the packets of one NFQUEUE for a one-way delay (+ normal jitter), drops some,
 * and never reorders. Same command line and protocol as `python -m topologies.delayline`:
 *
 *   mec-delayline --queue N --delay-ms D --jitter-ms J --loss-pct L [--seed S]
 *                 [--realtime] [--max-len M]
 *
 * After the queue is bound it writes "READY queue=N pid=P" on stdout; on SIGTERM or
 * SIGINT it accepts the packets still held, unbinds and writes "STATS {json}".
 *
 * Why it keeps up with 1 Gbit/s where the Python line does not:
 *  - metadata-only copy mode: no payload crosses to userspace;
 *  - NFQA_CFG_F_GSO when no loss is asked: a GSO super-packet (up to 64 KB of TCP
 *    segments) is queued as ONE packet instead of being segmented in the kernel;
 *    with loss the kernel segments as before, so loss stays per wire packet;
 *  - recvmmsg drains many queue messages per system call, from a large socket buffer;
 *  - release times never decrease and the kernel numbers packets in arrival order,
 *    so every packet due at a wake-up is accepted with ONE batch verdict
 *    (nfq_set_verdict_batch: all packets with an id up to the last due one).
 *
 * Release rule (same as release_time in delayline.py): a packet arriving at t leaves at
 * max(previous release, t + max(0, delay + jitter draw)), so jitter never reorders.
 * Random draws (loss first, then jitter, per packet) come from a seeded xorshift
 * generator: the same seed gives the same drops and delays.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define DEFAULT_MAX_LEN 65536
#define RCVBUF_BYTES (32 * 1024 * 1024)
#define BATCH 64           /* messages per recvmmsg */
#define MSG_BYTES 2048     /* one metadata-only queue message fits easily */
#define LATE_NS 1000000LL  /* a release later than this after its due time is "late" */

/* ------------------------------------------------------------------ options */

struct options {
    int queue;
    double delay_ms, jitter_ms, loss_pct;
    int have_seed;
    uint64_t seed;
    int realtime;
    uint32_t max_len;
};

static void usage(FILE *out) {
    fprintf(out, "usage: mec-delayline --queue N [--delay-ms D] [--jitter-ms J] "
                 "[--loss-pct L] [--seed S] [--realtime] [--max-len M]\n"
                 "Hold NFQUEUE packets for a one-way delay (+ normal jitter), drop some.\n");
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && isfinite(*out);
}

static int parse_options(int argc, char **argv, struct options *o) {
    static const struct option longopts[] = {
        {"queue", required_argument, 0, 'q'},     {"delay-ms", required_argument, 0, 'd'},
        {"jitter-ms", required_argument, 0, 'j'}, {"loss-pct", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 's'},      {"realtime", no_argument, 0, 'r'},
        {"max-len", required_argument, 0, 'm'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->queue = -1;
    o->max_len = DEFAULT_MAX_LEN;
    int c;
    double v;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            o->queue = (int)strtol(optarg, &end, 10);
            if (*end || o->queue < 0 || o->queue > 65535) return 0;
            break;
        case 'd': if (!parse_double(optarg, &o->delay_ms)) return 0; break;
        case 'j': if (!parse_double(optarg, &o->jitter_ms)) return 0; break;
        case 'l': if (!parse_double(optarg, &o->loss_pct)) return 0; break;
        case 's':
            o->seed = (uint64_t)strtoll(optarg, &end, 10);
            if (*end) return 0;
            o->have_seed = 1;
            break;
        case 'r': o->realtime = 1; break;
        case 'm':
            if (!parse_double(optarg, &v) || v < 1 || v > 1e6) return 0;
            o->max_len = (uint32_t)v;
            break;
        case 'h': usage(stdout); exit(0);
        default: return 0;
        }
    }
    if (o->queue < 0 || optind != argc) return 0;
    if (o->delay_ms < 0 || o->jitter_ms < 0 || o->loss_pct < 0 || o->loss_pct > 100) {
        fprintf(stderr, "delay and jitter must be >= 0 and loss in [0, 100]\n");
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ logging, time */

static void logmsg(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logmsg(const char *level, const char *fmt, ...) {
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s,%03ld %s mec-delayline[%d]: ", stamp, ts.tv_nsec / 1000000, level,
            (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ random draws */

struct rng {
    uint64_t s[4];
    int have_spare;
    double spare;
};

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
    r->have_spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** step */
static uint64_t rng_next(struct rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* uniform in [0, 1) with 53 random bits */
static inline double rng_uniform(struct rng *r) { return (rng_next(r) >> 11) * 0x1.0p-53; }

/* standard normal draw (Marsaglia's polar method, the second value kept) */
static double rng_gauss(struct rng *r) {
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2 * rng_uniform(r) - 1;
        v = 2 * rng_uniform(r) - 1;
        s = u * u + v * v;
    } while (s >= 1 || s == 0);
    double f = sqrt(-2 * log(s) / s);
    r->spare = v * f;
    r->have_spare = 1;
    return u * f;
}

/* ------------------------------------------------------------------ the line */

struct held { uint32_t id; int64_t release_ns; };

struct line {
    struct options opt;
    int64_t delay_ns, jitter_ns;
    double loss;
    struct rng rng;
    struct nfq_q_handle *qh;
    /* FIFO of held packets (ring; release times never decrease) */
    struct held *ring;
    uint32_t cap, head, count;
    int64_t last_release, arrival_now;
    int gso;
    /* counters reported in STATS */
    uint64_t received, accepted, dropped, late, overruns, verdict_errors, forced_early;
    uint32_t max_held;
    double max_late_ms;
};

/* release_time in delayline.py: never before the packet ahead, never before arrival */
static inline int64_t release_time(int64_t arrival, int64_t delay, int64_t jitter,
                                   int64_t previous) {
    int64_t hold = delay + jitter;
    int64_t t = arrival + (hold > 0 ? hold : 0);
    return t > previous ? t : previous;
}

static void accept_through(struct line *L, uint32_t id) {
    if (nfq_set_verdict_batch(L->qh, id, NF_ACCEPT) < 0) L->verdict_errors++;
}

/* Accept every held packet due at `now` with one batch verdict. */
static void release_due(struct line *L, int64_t now, int everything) {
    uint32_t last_id = 0;
    int any = 0;
    while (L->count) {
        struct held *h = &L->ring[L->head];
        if (!everything && h->release_ns > now) break;
        int64_t late = now - h->release_ns;
        if (!everything && late > LATE_NS) {
            L->late++;
            double ms = late / 1e6;
            if (ms > L->max_late_ms) L->max_late_ms = ms;
        }
        last_id = h->id;
        any = 1;
        L->head = (L->head + 1) & (L->cap - 1);
        L->count--;
        L->accepted++;
    }
    if (any) accept_through(L, last_id);
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa,
                     void *data) {
    (void)msg;
    struct line *L = data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (!ph) return 0;
    uint32_t id = ntohl(ph->packet_id);
    L->received++;
    if (L->loss > 0 && rng_uniform(&L->rng) < L->loss) {
        if (nfq_set_verdict(qh, id, NF_DROP, 0, NULL) < 0) L->verdict_errors++;
        L->dropped++;
        return 0;
    }
    int64_t jitter = L->jitter_ns ? (int64_t)llround(rng_gauss(&L->rng) * L->jitter_ns) : 0;
    L->last_release = release_time(L->arrival_now, L->delay_ns, jitter, L->last_release);
    if (L->count == L->cap) {
        /* cannot happen while cap >= the kernel's queue length; never lose a packet */
        release_due(L, L->ring[L->head].release_ns, 0);
        L->forced_early++;
    }
    struct held *h = &L->ring[(L->head + L->count) & (L->cap - 1)];
    h->id = id;
    h->release_ns = L->last_release;
    L->count++;
    if (L->count > L->max_held) L->max_held = L->count;
    return 0;
}

/* kernel counters of our queue: packets dropped because the queue was full, or
 * because our socket buffer was (from /proc/net/netfilter/nfnetlink_queue) */
static void kernel_drops(int queue, long long *queue_dropped, long long *user_dropped) {
    *queue_dropped = *user_dropped = -1;
    FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
    if (!f) return;
    long long q, portid, total, mode, range, qd, ud;
    while (fscanf(f, "%lld %lld %lld %lld %lld %lld %lld %*[^\n]", &q, &portid, &total, &mode,
                  &range, &qd, &ud) == 7) {
        if (q == queue) {
            *queue_dropped = qd;
            *user_dropped = ud;
        }
    }
    fclose(f);
}

static void print_stats(struct line *L) {
    long long qd, ud;
    kernel_drops(L->opt.queue, &qd, &ud);
    printf("STATS {\"queue\": %d, \"received\": %llu, \"accepted\": %llu, \"dropped\": %llu, "
           "\"max_held\": %u, \"late\": %llu, \"max_late_ms\": %.3f, \"line\": \"compiled\", "
           "\"gso\": %s, \"netlink_overruns\": %llu, \"verdict_errors\": %llu, "
           "\"forced_early\": %llu, \"kernel_queue_dropped\": %lld, "
           "\"kernel_user_dropped\": %lld}\n",
           L->opt.queue, (unsigned long long)L->received, (unsigned long long)L->accepted,
           (unsigned long long)L->dropped, L->max_held, (unsigned long long)L->late,
           L->max_late_ms, L->gso ? "true" : "false", (unsigned long long)L->overruns,
           (unsigned long long)L->verdict_errors, (unsigned long long)L->forced_early, qd, ud);
    fflush(stdout);
}

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t c = 1;
    while (c < n) c <<= 1;
    return c;
}

static int setup_line(struct line *L, struct nfq_handle **hp) {
    struct nfq_handle *h = nfq_open();
    if (!h) {
        logmsg("ERROR", "nfq_open: %s", strerror(errno));
        return 0;
    }
    *hp = h;
    L->qh = nfq_create_queue(h, (uint16_t)L->opt.queue, on_packet, L);
    if (!L->qh) {
        logmsg("ERROR", "cannot bind queue %d: %s", L->opt.queue, strerror(errno));
        return 0;
    }
    if (nfq_set_mode(L->qh, NFQNL_COPY_META, 0) < 0) {
        logmsg("ERROR", "cannot set metadata-only copy mode: %s", strerror(errno));
        return 0;
    }
    if (nfq_set_queue_maxlen(L->qh, L->opt.max_len) < 0)
        logmsg("WARNING", "cannot set queue length %u: %s", L->opt.max_len, strerror(errno));
    L->gso = L->loss == 0;
    if (L->gso && nfq_set_queue_flags(L->qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) {
        logmsg("WARNING", "kernel refuses NFQA_CFG_F_GSO (%s): GSO packets are segmented",
               strerror(errno));
        L->gso = 0;
    }
    int fd = nfq_fd(h), size = RCVBUF_BYTES;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0)
        logmsg("WARNING", "cannot enlarge the socket buffer: %s", strerror(errno));
    return 1;
}

/* Read every queue message waiting on fd (many per system call). */
static void drain(struct line *L, struct nfq_handle *h, int fd, char (*bufs)[MSG_BYTES],
                  struct mmsghdr *msgs, struct iovec *iov) {
    for (int rounds = 0; rounds < 64; rounds++) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = MSG_BYTES;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == ENOBUFS) {  /* messages lost: later batch verdicts accept them */
                L->overruns++;
                continue;
            }
            if (errno != EAGAIN && errno != EINTR) logmsg("WARNING", "recv: %s", strerror(errno));
            return;
        }
        L->arrival_now = now_ns();
        for (int i = 0; i < n; i++) nfq_handle_packet(h, bufs[i], (int)msgs[i].msg_len);
        if (n < BATCH) return;
    }
}

static int run(struct line *L) {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        logmsg("ERROR", "signalfd: %s", strerror(errno));
        return 1;
    }
    L->cap = pow2_at_least(L->opt.max_len);
    L->ring = calloc(L->cap, sizeof *L->ring);
    if (!L->ring) {
        logmsg("ERROR", "out of memory for %u held packets", L->cap);
        return 1;
    }
    struct nfq_handle *h = NULL;
    if (!setup_line(L, &h)) return 1;
    int fd = nfq_fd(h);
    printf("READY queue=%d pid=%d\n", L->opt.queue, (int)getpid());
    fflush(stdout);
    logmsg("INFO", "queue %d bound: delay %.3f ms, jitter sd %.3f ms, loss %.3f %%, gso %s",
           L->opt.queue, L->opt.delay_ms, L->opt.jitter_ms, L->opt.loss_pct,
           L->gso ? "on" : "off");

    static char bufs[BATCH][MSG_BYTES];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (L->count) {
            int64_t wait = L->ring[L->head].release_ns - now_ns();
            if (wait < 0) wait = 0;
            ts.tv_sec = wait / 1000000000LL;
            ts.tv_nsec = wait % 1000000000LL;
            tsp = &ts;
        }
        int n = ppoll(pfd, 2, tsp, NULL);
        if (n < 0 && errno != EINTR) {
            logmsg("ERROR", "ppoll: %s", strerror(errno));
            break;
        }
        if (n > 0 && (pfd[1].revents & POLLIN)) break;
        if (n > 0 && (pfd[0].revents & POLLIN)) drain(L, h, fd, bufs, msgs, iov);
        release_due(L, now_ns(), 0);
    }
    /* Packets queued after the last wake-up would be dropped by the unbind: take them
     * too, then let everything still held go rather than lose it. */
    drain(L, h, fd, bufs, msgs, iov);
    release_due(L, 0, 1);
    print_stats(L);
    nfq_destroy_queue(L->qh);
    nfq_close(h);
    logmsg("INFO", "queue %d stopped: received %llu accepted %llu dropped %llu late %llu",
           L->opt.queue, (unsigned long long)L->received, (unsigned long long)L->accepted,
           (unsigned long long)L->dropped, (unsigned long long)L->late);
    return 0;
}

int main(int argc, char **argv) {
    static struct line L;
    if (!parse_options(argc, argv, &L.opt)) {
        usage(stderr);
        return 2;
    }
    L.delay_ns = llround(L.opt.delay_ms * 1e6);
    L.jitter_ns = llround(L.opt.jitter_ms * 1e6);
    L.loss = L.opt.loss_pct / 100.0;
    L.last_release = INT64_MIN;
    uint64_t seed = L.opt.seed;
    if (!L.opt.have_seed && getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    rng_seed(&L.rng, seed);
    if (L.opt.realtime) {
        struct sched_param sp = {.sched_priority = 1};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
            logmsg("WARNING", "cannot use SCHED_FIFO (%s): running with normal priority",
                   strerror(errno));
    }
    return run(&L);
}
