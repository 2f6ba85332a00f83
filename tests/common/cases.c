/* tests/common/cases.c — the walk over ONNX testdata case directories (see cases.h). */
#include "cases.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qo_test_cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool selected(const char *name, char *const *filters, size_t nfilters) {
    if (!nfilters) return true;
    for (size_t f = 0; f < nfilters; f++)
        if (strstr(name, filters[f])) return true;
    return false;
}

size_t qo_test_cases_list(const char *datadir, const char *const *areas, size_t nareas, char *const *filters,
                          size_t nfilters, char ***out) {
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (size_t a = 0; a < nareas; a++) {
        const char *sep = areas[a][0] ? "/" : "";
        char dir[4096];
        snprintf(dir, sizeof dir, "%s%s%s", datadir, sep, areas[a]);
        DIR *d = opendir(dir);
        if (!d) continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char p[4096 + 512];
            snprintf(p, sizeof p, "%s/%s/model.onnx", dir, de->d_name);
            if (access(p, R_OK) != 0) continue;
            size_t len = strlen(areas[a]) + strlen(sep) + strlen(de->d_name) + 1;
            char *name = malloc(len);
            snprintf(name, len, "%s%s%s", areas[a], sep, de->d_name);
            if (!selected(name, filters, nfilters)) {
                free(name);
                continue;
            }
            if (n == cap) names = realloc(names, (cap = cap ? cap * 2 : 512) * sizeof *names);
            names[n++] = name;
        }
        closedir(d);
    }
    if (n) qsort(names, n, sizeof *names, qo_test_cmpstr);
    *out = names;
    return n;
}

void qo_test_cases_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}
