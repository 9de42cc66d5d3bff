#include "bench.h"

#include <stdio.h>

void bench_print_command(int argc, char **argv) {
  printf("#");
  for (int i = 0; i < argc; i++)
    printf(" %s", argv[i]);
  printf("\n");
}
