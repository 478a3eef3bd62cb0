/*
 * obs_err.c - sentences and names for the OBS_E* codes of obs_err.h.
 */
#include "obs_err.h"

const char *
obs_strerror(int rc)
{
    switch (rc) {
#define OBS_ERR_TEXT(name, num, text) \
    case num:                         \
        return text;
        OBS_ERRORS(OBS_ERR_TEXT)
#undef OBS_ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *
obs_errname(int rc)
{
    switch (rc) {
#define OBS_ERR_NAME(name, num, text) \
    case num:                         \
        return #name;
        OBS_ERRORS(OBS_ERR_NAME)
#undef OBS_ERR_NAME
    default:
        return "OBS_E?";
    }
}
