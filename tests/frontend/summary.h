/* tests/frontend/summary.h — prints the canonical structural summary of a loaded module, the same
 * format tests/frontend/onnx_summary.py prints from python3-onnx (see its docstring). */
#ifndef QOPT_TESTS_FRONTEND_SUMMARY_H
#define QOPT_TESTS_FRONTEND_SUMMARY_H

#include "ir/ir.h"

#include <stdio.h>

/* CRC-32 (zlib polynomial) of n bytes, continuing from crc (start with 0). */
uint32_t fe_crc32(uint32_t crc, const void *p, size_t n);
/* Writes the summary of m to out. */
void fe_summary(const qo_module *m, FILE *out);

#endif
