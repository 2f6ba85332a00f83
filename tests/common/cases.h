/* tests/common/cases.h — the walk over ONNX testdata case directories shared by the test runners
 * (tests/node/run_node_tests.c; tests/frontend/load_all.c can use it too). */
#ifndef QOPT_TESTS_COMMON_CASES_H
#define QOPT_TESTS_COMMON_CASES_H

#include <stdbool.h>
#include <stddef.h>

/* Lists the cases DATADIR/<area>/<case>/model.onnx (a readable file) for each of the nareas areas,
 * named "<area>/<case>"; the area "" stands for DATADIR/<case>/model.onnx, named "<case>". With
 * nfilters > 0 only names containing one of filters[] (as substrings) are kept. The names are sorted
 * with qo_test_cmpstr. Returns the count and sets *out to a malloc'd array of malloc'd names (NULL
 * when the count is 0); free them with qo_test_cases_free. A missing area directory is skipped. */
size_t qo_test_cases_list(const char *datadir, const char *const *areas, size_t nareas, char *const *filters,
                          size_t nfilters, char ***out);

/* Frees what qo_test_cases_list returned. */
void qo_test_cases_free(char **names, size_t n);

/* strcmp over two `char *` array elements, for qsort and bsearch on arrays of names. */
int qo_test_cmpstr(const void *a, const void *b);

#endif
