/* The C twin of main.go for launch.sh: Init, one Allreduce, Finalize. */
#include <mpi.h>
#include <stdio.h>

int main(int argc, char **argv) {
	long one = 1, sum = 0;
	int rank;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Allreduce(&one, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
	if (rank == 0)
		printf("ranks %ld\n", sum);
	MPI_Finalize();
	return 0;
}
