/*
 * obsdb_struct.c - the struct table (obsdb.h): the structure definitions'
 * text, stored as given under one key and read back whole. It neither parses
 * nor checks the text: model/structure.h does that before a caller stores
 * it. Called by the local API, from the loop thread.
 *
 * Layout: struct  "text" -> the structure text, as given (no NUL)
 */
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "obsdb.h"
#include "obsdb_int.h"
#include "store.h"

static const char struct_key[] = "text";

int
obsdb_structure_get(obsdb_txn_t *txn, char **text, size_t *len)
{
    store_val_t v;

    *text = NULL;
    int rc = store_get(&txn->st, STORE_T_STRUCT, struct_key,
                       sizeof(struct_key) - 1, &v);
    if (rc != 0)
        return rc;
    char *copy = malloc(v.len + 1);
    if (copy == NULL)
        return OBS_ENOMEM;
    memcpy(copy, v.ptr, v.len);
    copy[v.len] = '\0';
    *text = copy;
    if (len != NULL)
        *len = v.len;
    return OBS_OK;
}

int
obsdb_structure_put(obsdb_txn_t *txn, const char *text, size_t len)
{
    return store_put(&txn->st, STORE_T_STRUCT, struct_key,
                     sizeof(struct_key) - 1, text, len);
}
