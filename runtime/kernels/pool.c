/* runtime/kernels/pool.c — fixed-size thread pool with a blocking parallel for.
 *
 * A job is [0, n) cut into chunks; every thread, the caller included, claims chunks with an
 * atomic counter, so uneven chunks balance themselves. Between jobs a worker first spins (with a
 * pause) watching the job generation, then sleeps on a condition variable; the caller likewise
 * spins for the workers to leave the job, then sleeps on a second one. So back-to-back kernel
 * calls (a network's layers, with the serial stretches of a training step between them) skip the
 * futex wake-up, which costs tens of microseconds on a virtual machine, and an idle pool goes to
 * sleep within SPIN_NS. The spin is cut to SPIN_MIN_NS while the machine is shared (contention):
 * more pool threads than CPUs this process may run on, or pool threads being preempted (their
 * involuntary context switches, read every CHECK_WAITS waits). The generation and the busy count
 * are atomics: the job fields are published by the release store of the generation; the sleeping
 * paths re-check them under the mutex, and the waker takes the mutex before it signals, so no
 * wake-up is lost. */
#include "runtime/kernels/kernels.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Spin budget before sleeping, in nanoseconds: SPIN_NS on a machine the pool has to itself (it
 * spans the serial work between a training step's kernel calls: 100 us left about ten
 * futex sleeps in each ResNet-8 step), SPIN_MIN_NS under contention (see contention_check). */
#define SPIN_NS 1000000
#define SPIN_MIN_NS 2000
/* Waits between two reads of a thread's involuntary context switches, and how many switches
 * over that span mean contention. */
#define CHECK_WAITS 64
#define CHECK_SWITCHES 2

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One step of a bounded spin (call with i = 1, 2, ...): pauses, and every 64 steps checks the
 * clock: false once `budget` ns have passed (time to sleep). */
static bool spin_step(unsigned i, int64_t t0, int64_t budget) {
    cpu_relax();
    return (i & 63) || now_ns() - t0 <= budget;
}

typedef struct scratch {
    void *p;
    size_t cap;
    char pad_[64 - sizeof(void *) - sizeof(size_t)]; /* one cache line per thread */
} scratch;

struct qo_pool {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_mutex_t job_mu; /* serializes qo_pool_for calls from several application threads */
    _Atomic uint64_t gen;  /* job generation, bumped per job (under mu, read by spinners without it) */
    _Atomic int busy;      /* workers still inside the current job */
    _Atomic bool quit;
    _Atomic int64_t spin_ns; /* current spin budget */
    bool oversubscribed;     /* more threads than CPUs to run on: spin_ns stays SPIN_MIN_NS */
    /* the current job */
    qo_pool_fn fn;
    void *ctx;
    int64_t n, chunk, nchunks;
    _Atomic int64_t next;
    scratch *scr;
};

/* Sets the pool's spin budget from the calling thread's involuntary context switches, once every
 * CHECK_WAITS of its waits: a thread preempted CHECK_SWITCHES times or more shares its CPU with
 * other work, and spinning would burn the time slice the thread it waits for needs, so the pool
 * then sleeps at once; a span without preemption restores the full spin. A long wait is not
 * taken as contention (serial stretches between calls are normal). */
static void contention_check(qo_pool *p) {
#ifdef RUSAGE_THREAD
    static _Thread_local unsigned waits;
    static _Thread_local long nivcsw;
    if (++waits % CHECK_WAITS || p->oversubscribed) return;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru)) return;
    long d = ru.ru_nivcsw - nivcsw;
    nivcsw = ru.ru_nivcsw;
    atomic_store_explicit(&p->spin_ns, d >= CHECK_SWITCHES ? SPIN_MIN_NS : SPIN_NS, memory_order_relaxed);
#else
    (void)p;
#endif
}

/* Inside a parallel for on this thread (nested calls run inline). */
static _Thread_local int in_job;

static void run_chunks(qo_pool *p, int tid) {
    in_job = 1;
    for (;;) {
        int64_t c = atomic_fetch_add(&p->next, 1);
        if (c >= p->nchunks) break;
        int64_t b = c * p->chunk, e = b + p->chunk;
        if (e > p->n) e = p->n;
        p->fn(p->ctx, b, e, tid);
    }
    in_job = 0;
}

typedef struct worker_arg {
    qo_pool *p;
    int tid;
} worker_arg;

static void *worker(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    qo_pool *p = wa.p;
    uint64_t seen = 0;
    for (;;) {
        /* spin for the next job, then sleep */
        int64_t t0 = now_ns(), budget = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
        for (unsigned i = 1; atomic_load_explicit(&p->gen, memory_order_acquire) == seen && !atomic_load(&p->quit); i++)
            if (!spin_step(i, t0, budget)) break;
        bool hit = atomic_load_explicit(&p->gen, memory_order_acquire) != seen || atomic_load(&p->quit);
        contention_check(p);
        if (!hit) {
            pthread_mutex_lock(&p->mu);
            while (!atomic_load(&p->quit) && atomic_load(&p->gen) == seen) pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        run_chunks(p, wa.tid);
        if (atomic_fetch_sub(&p->busy, 1) == 1) { /* the last one out wakes a sleeping caller */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

qo_pool *qo_pool_new(int nthreads) {
    if (nthreads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = c > 0 ? (int)c : 1;
    }
    qo_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->nthreads = nthreads;
    p->scr = calloc((size_t)nthreads, sizeof *p->scr);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->scr || !p->threads) {
        free(p->scr), free(p->threads), free(p);
        return NULL;
    }
    cpu_set_t cs;
    p->oversubscribed = sched_getaffinity(0, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) < nthreads;
    atomic_init(&p->spin_ns, p->oversubscribed ? SPIN_MIN_NS : SPIN_NS);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->job_mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    openblas_set_num_threads(1);
    for (int t = 1; t < nthreads; t++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) wa->p = p, wa->tid = t;
        if (!wa || pthread_create(&p->threads[t], NULL, worker, wa) != 0) {
            free(wa);
            p->nthreads = t; /* join the ones started */
            qo_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void qo_pool_free(qo_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->nthreads; t++) pthread_join(p->threads[t], NULL);
    for (int t = 0; t < p->nthreads; t++) qo_free_big(p->scr[t].p, p->scr[t].cap);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->job_mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->scr);
    free(p->threads);
    free(p);
}

int qo_pool_size(const qo_pool *p) { return p ? p->nthreads : 1; }

void *qo_pool_scratch(qo_pool *p, int tid, size_t bytes) {
    scratch *s = &p->scr[tid];
    if (s->cap < bytes) {
        qo_free_big(s->p, s->cap);
        size_t cap = bytes + bytes / 4;
        cap = (cap + 63) & ~(size_t)63;
        s->p = qo_calloc_big(cap); /* 64-byte aligned; from 2 MB, huge-page advised */
        s->cap = cap;
    }
    return s->p;
}

void qo_pool_for(qo_pool *p, int64_t n, int64_t grain, qo_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (!p || p->nthreads == 1 || n <= grain || in_job) {
        fn(ctx, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->job_mu);
    /* about 4 chunks per thread for balance, never below the grain */
    int64_t chunk = (n + 4 * p->nthreads - 1) / (4 * p->nthreads);
    if (chunk < grain) chunk = grain;
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx, p->n = n, p->chunk = chunk;
    p->nchunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, p->nthreads - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release); /* publishes the job */
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    int64_t t0 = now_ns(), budget = atomic_load_explicit(&p->spin_ns, memory_order_relaxed);
    for (unsigned i = 1; atomic_load_explicit(&p->busy, memory_order_acquire) > 0; i++)
        if (!spin_step(i, t0, budget)) break;
    bool hit = atomic_load_explicit(&p->busy, memory_order_acquire) == 0;
    contention_check(p);
    if (!hit) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->busy) > 0) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->job_mu);
}
