/* Shared by the fuzz targets: the entry point libFuzzer (or replay.c)
 * calls, and a check that stops the run the way a sanitizer would. */
#ifndef HW_FUZZ_H
#define HW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* abort(), not exit(): libFuzzer saves the input only for a crash. */
#define FUZZ_CHECK(cond) do { if (!(cond)) { \
        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
