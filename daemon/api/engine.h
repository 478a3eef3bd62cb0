/*
 * engine.h - one obsyncd: its store, its structure, its local API and the
 * single event loop that serves them (DESIGN.md §5, STYLE.md §2.5).
 *
 * The engine is an object on a loop (runtime/loop.h) so tests can embed a
 * hub and several nodes in one process. One thread owns it; there are no locks.
 * Writes from every client are queued during a loop turn and committed together
 * in before_sleep (group commit); an import is staged in memory and committed
 * as one transaction. Ownership: the engine borrows cfg for its whole life and
 * owns the rest.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>

#include "cfg.h"
#include "loop.h"

typedef struct engine engine_t;

/** Opens the store in cfg->data_dir, loads the structure (from the store;
 * on first start from cfg->structure_file), binds the local API, starts the
 * role's replication and registers their handlers on loop (borrowed: it
 * must outlive the engine). Several engines may share one loop.
 * Returns OBS_OK or an OBS_E* with a message in err. */
int engine_new(const cfg_t *cfg, loop_t *loop, engine_t **out, char *err,
               size_t cap);
/** Commits what is queued, takes the engine's handlers off its loop and
 * closes everything. NULL-safe; sets *selfp to NULL. */
void engine_destroy(engine_t **selfp);

#endif
