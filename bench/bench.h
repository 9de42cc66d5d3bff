/* What every benchmark's output starts with, so that a figure pasted
 * elsewhere carries the command that reproduces it. */
#ifndef INFSCHED_BENCH_H
#define INFSCHED_BENCH_H

/* Prints "# PROGRAM ARGS..." on stdout: the command line as it was run. */
void bench_print_command(int argc, char **argv);

#endif
