/*
 * issue.c - bounded issue list (see issue.h).
 */
#include "issue.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
issue_list_init(issue_list_t *l, size_t max)
{
    memset(l, 0, sizeof(*l));
    l->max = max ? max : 1000;
}

void
issue_list_fini(issue_list_t *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void
issue_list_clear(issue_list_t *l)
{
    l->n = 0;
    l->omitted = 0;
    l->errors = 0;
    l->warnings = 0;
}

void
issue_add(issue_list_t *l, uint64_t line, const char *column, const char *rule,
          bool warning, const char *fmt, ...)
{
    if (warning)
        l->warnings++;
    else
        l->errors++;
    if (l->n >= l->max) {
        l->omitted++;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        issue_t *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            l->omitted++;
            return;
        }
        l->items = items;
        l->cap = cap;
    }
    issue_t *it = &l->items[l->n++];
    it->line = line;
    it->warning = warning;
    (void)snprintf(it->column, sizeof(it->column), "%s", column ? column : "");
    (void)snprintf(it->rule, sizeof(it->rule), "%s", rule ? rule : "");
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(it->message, sizeof(it->message), fmt, ap);
    va_end(ap);
}

msg_issue_t *
issue_list_rows(const issue_list_t *l, size_t max, size_t *n)
{
    *n = 0;
    size_t k = l->n < max ? l->n : max;
    msg_issue_t *out = k ? calloc(k, sizeof(*out)) : NULL;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < k; i++)
        out[i] = (msg_issue_t){.line = l->items[i].line,
                               .column = l->items[i].column,
                               .rule = l->items[i].rule,
                               .message = l->items[i].message,
                               .warning = l->items[i].warning};
    *n = k;
    return out;
}
