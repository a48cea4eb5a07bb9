/* coll: Barrier, Bcast and Allreduce latency at any number of ranks, the C
 * twin of gorun's test/bench/{barrier,bcast,allreduce} for oversub.sh.
 *
 * Output rows: bench<TAB>bytes<TAB>value<TAB>us, value = mean µs per call
 * averaged over the ranks (each rank times its own loop; rank 0 plans the
 * iteration count from a timed warm-up so the loop lasts PERF_TARGET_S
 * seconds, default 0.25, and broadcasts it). Bcast of MPI_CHAR alternates
 * its root between ranks 0 and 1 every call, as gorun's bcast does;
 * Allreduce is MPI_SUM of MPI_DOUBLE and its 1 MiB result is checked (element i = size * i). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

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
    const size_t big = 1UL << 20;
    double *a = malloc(big), *b = malloc(big);
    if (!a || !b) MPI_Abort(MPI_COMM_WORLD, 3);
    for (size_t i = 0; i < big / 8; i++) a[i] = (double)i, b[i] = 0;
    double per;

    MPI_Barrier(MPI_COMM_WORLD);
    LOOP(warm_for(0), per, MPI_Barrier(MPI_COMM_WORLD));
    report("barrier", 0, per);

    static const size_t sizes[] = {8, 1UL << 20};
    for (int k = 0; k < 2; k++) {
        int n = (int)sizes[k];
        long call = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        LOOP(warm_for(n), per, MPI_Bcast(a, n, MPI_CHAR, (int)(call++ & 1), MPI_COMM_WORLD));
        report("bcast", (size_t)n, per);
    }
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
    MPI_Finalize();
    return 0;
}
