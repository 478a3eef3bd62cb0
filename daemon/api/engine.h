/*
 * engine.h - one obsyncd: its store, its structure, its local API and the
 * single event loop that serves them (DESIGN.md §5, STYLE.md §2.5).
 *
 * The engine is an object on a loop so tests can embed several in one
 * process. One thread owns it; there are no locks. Writes from every client
 * are queued during a loop turn and committed together in before_sleep (group
 * commit); an import is staged in memory and committed as one transaction.
 * Ownership: the engine borrows cfg for its whole life and owns the rest.
 */
#ifndef ENGINE_H
#define ENGINE_H

#include <stdbool.h>

#include "cfg.h"

typedef struct engine engine_t;

/** Opens the store in cfg->data_dir, loads the structure (from the store;
 * on first start from cfg->structure_file) and binds the local API.
 * Returns OBS_OK or an OBS_E* with a message in err. */
int engine_new(const cfg_t *cfg, engine_t **out, char *err, size_t cap);
/** Runs the loop until engine_stop() or a SIGTERM/SIGINT flag is seen. */
int engine_run(engine_t *self);
/** Asks the loop to stop after the current turn (async-signal-safe). */
void engine_stop(engine_t *self);
/** Closes everything (pending writes were flushed by engine_run). */
void engine_destroy(engine_t **selfp);

#endif
