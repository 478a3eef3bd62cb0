/*
 * issue.h - a bounded list of row issues (rejections and warnings) that the
 * validator, the SDMX-CSV mapper and the structure loader append to, and the
 * daemon turns into RowIssue messages. Keeps at most `max` issues and counts
 * the rest in `omitted`, so a hostile file cannot grow memory without bound.
 */
#ifndef ISSUE_H
#define ISSUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"

typedef struct {
    uint64_t line;   /* 1-based source line, 0 = none */
    char column[64]; /* offending column or "" */
    char rule[32];   /* stable id, e.g. "R4-decimal" */
    char message[320];
    bool warning; /* row accepted with a warning */
} issue_t;

typedef struct {
    issue_t *items; /* owned */
    size_t n, cap;
    size_t max;     /* keep at most this many (0 = 1000) */
    size_t omitted; /* issues dropped past max */
    size_t errors;  /* non-warning issues added, kept or not */
    size_t warnings;
} issue_list_t;

void issue_list_init(issue_list_t *l, size_t max);
void issue_list_fini(issue_list_t *l);
void issue_list_clear(issue_list_t *l);
/** Appends one issue (printf-style message). Never fails: on OOM or past max
 * it only counts. */
void issue_add(issue_list_t *l, uint64_t line, const char *column,
               const char *rule, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/** At most max of l's issues as message rows (their strings point into
 * l: keep l unchanged while the rows are used). A malloc'd array the
 * caller frees; NULL with *n = 0 when l is empty or memory is short. */
msg_issue_t *issue_list_rows(const issue_list_t *l, size_t max, size_t *n);

#endif
