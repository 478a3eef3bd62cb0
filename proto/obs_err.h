/*
 * obs_err.h - obsync error codes, shared by the daemon, libobsync and the wire.
 *
 * Functions return 0 (OBS_OK) or a negative OBS_E* code. The numbers travel in
 * ErrorReply.code, so this table is append only: never renumber or reuse.
 */
#ifndef OBS_ERR_H
#define OBS_ERR_H

#define OBS_ERRORS(X)                                       \
    X(OBS_OK, 0, "success")                                 \
    X(OBS_ENOMEM, -1, "out of memory")                      \
    X(OBS_EINVAL, -2, "invalid argument")                   \
    X(OBS_EPROTO, -3, "malformed or unexpected message")    \
    X(OBS_EVERSION, -4, "unsupported protocol version")     \
    X(OBS_EAUTH, -5, "not authorised for this data")        \
    X(OBS_ENOENT, -6, "not found")                          \
    X(OBS_ESTOREFULL, -7, "store map is full")              \
    X(OBS_ESTORE, -8, "store failure")                      \
    X(OBS_ESYS, -9, "system call failed")                   \
    X(OBS_EUNREACH, -10, "daemon unreachable")              \
    X(OBS_ETIMEOUT, -11, "timed out")                       \
    X(OBS_ETOOBIG, -12, "input exceeds a configured limit") \
    X(OBS_EREJECTED, -13, "some rows were rejected")        \
    X(OBS_ECONFIG, -14, "invalid configuration")            \
    X(OBS_EEXIST, -15, "already exists")                    \
    X(OBS_EBUSY, -16, "resource busy")                      \
    X(OBS_ESTRUCT, -17, "invalid structure definition")     \
    X(OBS_EFORMAT, -18, "malformed input file")             \
    X(OBS_ECLOCK, -19, "clock too far from the hub's")

enum obs_err {
#define OBS_ERR_ENUM(name, num, text) name = (num),
    OBS_ERRORS(OBS_ERR_ENUM)
#undef OBS_ERR_ENUM
};

/** Sentence for an OBS_E* code; never NULL ("unknown error" for others). */
const char *obs_strerror(int rc);

/** Symbolic name ("OBS_ENOENT") for a code; never NULL. */
const char *obs_errname(int rc);

#endif
