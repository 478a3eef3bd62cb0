/*
 * structure_lex.c - the structure text format's lexical level
 * (deploy/structure/README.md): one line into words, key=value options and
 * at most one quoted name (unescaped into the parser's scratch buffer), and
 * the rules every token must meet: what an id, a code, an agency, a version,
 * a URN and a name may be. It knows no keywords: structure_parse.c gives
 * the words their meaning. Lengths are checked before anything is stored,
 * and there is no recursion. No I/O. Threading: none.
 */
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"
#include "structure_int.h"

#define ST_NAME_MAX    1000 /* bytes of a name, after unescaping */
#define ST_VERSION_MAX 32

/* ------------------------------------------------------------------ */
/* Lexical rules */

static bool
is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
}

static bool
is_id_char(char c)
{
    return is_alnum(c) || c == '_' || c == '@' || c == '$' || c == '-';
}

/* An id: [A-Za-z0-9_@$-]+ starting with a letter or digit (codes may also
 * start with '_', as SDMX's _T, _Z, _U do), at most max characters. */
bool
structure_valid_id_n(const char *s, size_t n, size_t max, bool code)
{
    if (n == 0 || n > max)
        return false;
    if (!is_alnum(s[0]) && !(code && s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_id_char(s[i]))
            return false;
    return true;
}

bool
structure_valid_id(const char *s, bool code)
{
    return structure_valid_id_n(s, strlen(s), OBS_CODE_MAX, code);
}

static bool
valid_agency(const char *s, size_t n)
{
    if (n == 0 || n > OBS_CODE_MAX || !is_alnum(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

static bool
valid_version(const char *s, size_t n)
{
    if (n == 0 || n > ST_VERSION_MAX || s[0] < '0' || s[0] > '9')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '+' && s[i] != '-')
            return false;
    return true;
}

/* AGENCY:ID(VERSION), at most OBS_DATAFLOW_MAX characters. */
bool
structure_valid_urn(const char *s)
{
    size_t n = strlen(s);
    if (n < 6 || n > OBS_DATAFLOW_MAX || s[n - 1] != ')')
        return false;
    const char *colon = strchr(s, ':');
    const char *open = strchr(s, '(');
    if (colon == NULL || open == NULL || open < colon)
        return false;
    size_t id_len = (size_t)(open - colon - 1);
    return valid_agency(s, (size_t)(colon - s)) &&
           structure_valid_id_n(colon + 1, id_len, OBS_CODE_MAX, false) &&
           valid_version(open + 1, (size_t)(s + n - 1 - open - 1));
}

static size_t
utf8_seq_len(unsigned char c, uint32_t *cp, uint32_t *min)
{
    if ((c & 0xE0) == 0xC0) {
        *cp = c & 0x1Fu;
        *min = 0x80;
        return 2;
    }
    if ((c & 0xF0) == 0xE0) {
        *cp = c & 0x0Fu;
        *min = 0x800;
        return 3;
    }
    if ((c & 0xF8) == 0xF0) {
        *cp = c & 0x07u;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

/* Names travel in protobuf strings: valid UTF-8 without control chars. */
static bool
valid_name(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        uint32_t cp = 0, min = 0;
        size_t k = utf8_seq_len(c, &cp, &min);
        if (k == 0 || k > n - i)
            return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Tokenizer: one line into words, key=value options and one quoted name.
 * Tokens are copied, NUL-terminated and unescaped, into p->scratch. */

static int
scratch_reserve(parser_t *p, size_t want)
{
    if (want <= p->scratch_cap)
        return 0;
    char *n = realloc(p->scratch, want);
    if (n == NULL)
        return OBS_ENOMEM;
    p->scratch = n;
    p->scratch_cap = want;
    return 0;
}

static int
read_quoted(parser_t *p, uint64_t ln, const char *s, size_t n, size_t *ip,
            char **outp)
{
    char *out = *outp, *start = out;
    size_t i = *ip + 1;
    for (;;) {
        if (i >= n)
            return structure_perr(p, ln, "unterminated quoted name");
        char c = s[i++];
        if (c == '"')
            break;
        if (c == '\\') {
            if (i >= n)
                return structure_perr(p, ln, "unterminated quoted name");
            c = s[i++];
            if (c != '"' && c != '\\')
                return structure_perr(
                    p, ln, "bad escape in name (only \\\" and \\\\)");
        }
        *out++ = c;
    }
    if (i < n && s[i] != ' ' && s[i] != '\t')
        return structure_perr(p, ln, "no blank after quoted name");
    size_t len = (size_t)(out - start);
    *out++ = '\0';
    if (len > ST_NAME_MAX)
        return structure_perr(p, ln, "name longer than %d bytes", ST_NAME_MAX);
    if (!valid_name((const unsigned char *)start, len))
        return structure_perr(p, ln, "name is not valid UTF-8 text");
    *ip = i;
    *outp = out;
    return 0;
}

static int
add_word(parser_t *p, uint64_t ln, line_t *lt, char *tok)
{
    char *eq = strchr(tok, '=');
    if (eq == NULL) {
        lt->word[lt->n_word++] = tok;
        return 0;
    }
    if (eq == tok)
        return structure_perr(p, ln, "option without a key");
    *eq = '\0';
    lt->key[lt->n_opt] = tok;
    lt->val[lt->n_opt++] = eq + 1;
    return 0;
}

int
structure_tokenize(parser_t *p, uint64_t ln, const char *s, size_t n,
                   line_t *lt)
{
    memset(lt, 0, sizeof(*lt));
    if (scratch_reserve(p, n + ST_MAX_TOKENS + 1) != 0 || p->scratch == NULL)
        return OBS_ENOMEM;
    char *out = p->scratch;
    size_t i = 0, ntok = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n || s[i] == '#')
            return 0;
        if (ntok++ == ST_MAX_TOKENS)
            return structure_perr(p, ln, "more than %d tokens", ST_MAX_TOKENS);
        char *tok = out;
        if (s[i] == '"') {
            if (lt->name != NULL)
                return structure_perr(p, ln, "more than one quoted name");
            int rc = read_quoted(p, ln, s, n, &i, &out);
            if (rc != 0)
                return rc;
            lt->name = tok;
            continue;
        }
        while (i < n && s[i] != ' ' && s[i] != '\t')
            *out++ = s[i++];
        *out++ = '\0';
        int rc = add_word(p, ln, lt, tok);
        if (rc != 0)
            return rc;
    }
}
