/* coll: Barrier, Bcast, Allreduce, Allgather and Alltoall latency at any
 * number of ranks, the C twin of gorun's
 * test/bench/{barrier,bcast,allreduce,allgather,alltoall} for oversub.sh and
 * large.sh.
 *
 * usage: coll [BENCH ...]   BENCH is barrier, bcast, allreduce, allgather or
 * alltoall; the default is barrier bcast allreduce (oversub.sh's set). They
 * run in this order whatever the order of the arguments.
 *
 * Output rows: bench<TAB>bytes<TAB>value<TAB>us, value = mean µs per call
 * averaged over the ranks (each rank times its own loop; rank 0 plans the
 * iteration count from a timed warm-up so the loop lasts PERF_TARGET_S
 * seconds, default 0.25, and broadcasts it). Bcast of MPI_CHAR alternates
 * its root between ranks 0 and 1 every call, as gorun's bcast does;
 * Allreduce is MPI_SUM of MPI_DOUBLE and its 1 MiB result is checked (element i = size * i).
 * Allgather (8 B and 1 MiB per rank) and Alltoall (8 B and 64 KiB per pair)
 * of MPI_CHAR: the size is per rank and per pair, as in osu_allgather and
 * osu_alltoall, and the larger result is checked with the pattern of the Go
 * programs. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

/* wanted: whether BENCH was asked for (or, with no arguments, is in the
 * default set). */
static int wanted(int argc, char **argv, const char *bench) {
    if (argc < 2)
        return !strcmp(bench, "barrier") || !strcmp(bench, "bcast") || !strcmp(bench, "allreduce");
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], bench)) return 1;
    return 0;
}

static void *alloc(size_t n) {
    unsigned char *p = malloc(n);
    if (!p) MPI_Abort(MPI_COMM_WORLD, 3);
    memset(p, 0, n);
    return p;
}

/* pattern: byte k of the block rank from sends to rank to in alltoall (the Go
 * program's pattern). */
static unsigned char pattern(int from, int to, size_t k) { return (unsigned char)(1 + from + 16 * to + k); }

static long warm_for(size_t n) { return n <= 8192 ? 1000 : n <= 65536 ? 200 : 20; }

static long plan(double warm_s, long warm_n) {
    const char *s = getenv("PERF_TARGET_S");
    double target = s ? atof(s) : 0.25;
    if (target <= 0) target = 0.25;
    double per = warm_s / (double)warm_n;
    if (per <= 0) per = 1e-9;
    double n = target / per;
    if (n < 10) n = 10;
    if (n > 50e6) n = 50e6;
    return (long)n;
}

#define LOOP(WARM, PER, BODY)                                   \
    do {                                                        \
        long w_ = (WARM);                                       \
        double t_ = MPI_Wtime();                                \
        for (long i_ = 0; i_ < w_; i_++) { BODY; }              \
        long n_ = plan(MPI_Wtime() - t_, w_);                   \
        MPI_Bcast(&n_, 1, MPI_LONG, 0, MPI_COMM_WORLD);         \
        t_ = MPI_Wtime();                                       \
        for (long i_ = 0; i_ < n_; i_++) { BODY; }              \
        (PER) = (MPI_Wtime() - t_) / (double)n_;                \
    } while (0)

static void report(const char *name, size_t n, double per) {
    double mine = per * 1e6, sum = 0;
    MPI_Reduce(&mine, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("%s\t%zu\t%.4f\tus\n", name, n, sum / size);
        fflush(stdout);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "barrier") && strcmp(argv[i], "bcast") && strcmp(argv[i], "allreduce") &&
            strcmp(argv[i], "allgather") && strcmp(argv[i], "alltoall")) {
            if (rank == 0) fprintf(stderr, "coll: unknown benchmark %s\n", argv[i]);
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    const size_t big = 1UL << 20;
    double *a = alloc(big), *b = alloc(big);
    for (size_t i = 0; i < big / 8; i++) a[i] = (double)i, b[i] = 0;
    double per;

    if (wanted(argc, argv, "barrier")) {
        MPI_Barrier(MPI_COMM_WORLD);
        LOOP(warm_for(0), per, MPI_Barrier(MPI_COMM_WORLD));
        report("barrier", 0, per);
    }

    static const size_t sizes[] = {8, 1UL << 20};
    if (wanted(argc, argv, "bcast"))
        for (int k = 0; k < 2; k++) {
            int n = (int)sizes[k];
            long call = 0;
            MPI_Barrier(MPI_COMM_WORLD);
            LOOP(warm_for(n), per, MPI_Bcast(a, n, MPI_CHAR, (int)(call++ & 1), MPI_COMM_WORLD));
            report("bcast", (size_t)n, per);
        }
    if (wanted(argc, argv, "allreduce")) {
        for (size_t i = 0; i < big / 8; i++) a[i] = (double)i;
        for (int k = 0; k < 2; k++) {
            int n = (int)sizes[k];
            MPI_Barrier(MPI_COMM_WORLD);
            LOOP(warm_for(n), per, MPI_Allreduce(a, b, n / 8, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
            report("allreduce", (size_t)n, per);
        }
        for (size_t i = 0; i < big / 8; i++)
            if (b[i] != (double)size * (double)i) {
                fprintf(stderr, "coll: allreduce result wrong on rank %d at %zu\n", rank, i);
                MPI_Abort(MPI_COMM_WORLD, 4);
            }
    }
    if (wanted(argc, argv, "allgather")) {
        unsigned char *s = alloc(big), *r = alloc((size_t)size * big);
        for (size_t i = 0; i < big; i++) s[i] = (unsigned char)(rank + i);
        for (int k = 0; k < 2; k++) {
            int n = (int)sizes[k];
            MPI_Barrier(MPI_COMM_WORLD);
            LOOP(warm_for(n), per, MPI_Allgather(s, n, MPI_CHAR, r, n, MPI_CHAR, MPI_COMM_WORLD));
            report("allgather", (size_t)n, per);
        }
        for (size_t i = 0; i < (size_t)size * big; i++)
            if (r[i] != (unsigned char)(i / big + i % big)) {
                fprintf(stderr, "coll: allgather result wrong on rank %d at %zu\n", rank, i);
                MPI_Abort(MPI_COMM_WORLD, 4);
            }
        free(s), free(r);
    }
    if (wanted(argc, argv, "alltoall")) {
        const size_t pair = 64UL << 10;
        static const size_t blocks[] = {8, 64UL << 10};
        unsigned char *s = alloc((size_t)size * pair), *r = alloc((size_t)size * pair);
        for (int k = 0; k < 2; k++) {
            int m = (int)blocks[k];
            for (size_t j = 0; j < (size_t)size * m; j++) s[j] = pattern(rank, (int)(j / m), j % m);
            MPI_Barrier(MPI_COMM_WORLD);
            LOOP(warm_for(m), per, MPI_Alltoall(s, m, MPI_CHAR, r, m, MPI_CHAR, MPI_COMM_WORLD));
            report("alltoall", (size_t)m, per);
        }
        for (size_t i = 0; i < (size_t)size * pair; i++)
            if (r[i] != pattern((int)(i / pair), rank, i % pair)) {
                fprintf(stderr, "coll: alltoall result wrong on rank %d at %zu\n", rank, i);
                MPI_Abort(MPI_COMM_WORLD, 4);
            }
        free(s), free(r);
    }
    free(a), free(b);
    MPI_Finalize();
    return 0;
}
