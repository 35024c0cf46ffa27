/*
 * corral.h: write Corral plugins in C. The guest side of Corral WASM ABI v1 in one header: the ABI's
 * exports, JSON in and out, the host API, and errors with codes of the plugin's own.
 *
 * Use: in exactly one C file of the plugin,
 *
 *     #define CORRAL_IMPLEMENTATION
 *     #include "corral.h"
 *
 *     CORRAL_FUNCTION(greet, input, out) {
 *         corral_str name;
 *         corral_field found = corral_json_get_string(input, "name", &name);
 *         if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "name", "a string");
 *         corral_write_begin_object(out);
 *         corral_write_key(out, "message");
 *         corral_write_string(out, corral_format("Hello, %s!", name.ptr));
 *         corral_write_end_object(out);
 *         return CORRAL_DONE;
 *     }
 *
 * and build a WASI reactor: clang --target=wasm32-wasi -mexec-model=reactor -O2 -o plugin.wasm plugin.c
 * (wasi-libc gives malloc and vsnprintf). Other files of the same plugin include it without the define.
 *
 * Memory: everything the header hands out during a call (the input, decoded strings, formatted text,
 * host answers, writers' text) lives until the next call of the instance starts, then is freed at
 * once: a plugin frees nothing itself. Keep what must outlive a call in memory of your own (or,
 * better, in the host cache: instances share nothing and are replaced at will). Running out of memory
 * traps: the host replaces the instance and fails the call with `resource_exhausted`, naming the
 * plugin's memory cap.
 */
#ifndef CORRAL_H
#define CORRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The Corral ABI version this header implements. */
#define CORRAL_ABI_VERSION 1

/** Exports a C function from the module under `name`. */
#define CORRAL_EXPORT(name) __attribute__((export_name(name)))

/* ---- Values ------------------------------------------------------------------------------------ */

/** UTF-8 text: `ptr` is NUL-terminated (a `\u0000` inside counts in `len`), or NULL for none. */
typedef struct corral_str {
    const char *ptr;
    size_t len;
} corral_str;

/** A JSON value: the span of its text, already checked to be valid JSON. `text` NULL: no value. */
typedef struct corral_json {
    const char *text;
    size_t len;
} corral_json;

typedef enum corral_json_kind {
    CORRAL_JSON_NONE, /* no value (a missing field, an invalid document) */
    CORRAL_JSON_NULL,
    CORRAL_JSON_BOOL,
    CORRAL_JSON_NUMBER,
    CORRAL_JSON_STRING,
    CORRAL_JSON_ARRAY,
    CORRAL_JSON_OBJECT
} corral_json_kind;

/** What reading a field found: the field, no field (absent or `null`), or a value of another type. */
typedef enum corral_field { CORRAL_FIELD_OK, CORRAL_FIELD_MISSING, CORRAL_FIELD_WRONG_TYPE } corral_field;

/** How a plugin function ends: with its output written, or failed by `corral_fail`. */
typedef enum corral_result { CORRAL_DONE = 0, CORRAL_FAILED = 1 } corral_result;

/** Log levels, as the ABI's `log` import numbers them. */
typedef enum corral_log_level {
    CORRAL_LOG_TRACE = 0,
    CORRAL_LOG_DEBUG = 1,
    CORRAL_LOG_INFO = 2,
    CORRAL_LOG_WARN = 3,
    CORRAL_LOG_ERROR = 4
} corral_log_level;

/* ---- Reading JSON -------------------------------------------------------------------------------- */

/** Checks that `text` is one JSON value (with no more than 512 levels of nesting); false if not. */
bool corral_json_parse(const char *text, size_t len, corral_json *value);
corral_json_kind corral_json_kind_of(corral_json value);

/*
 * Fields of an object, by key (the first one when a key repeats). A field that is absent or `null`,
 * or any field of something that is not an object, is CORRAL_FIELD_MISSING; a field of another type
 * is CORRAL_FIELD_WRONG_TYPE. `*value` is written only on CORRAL_FIELD_OK.
 */
corral_field corral_json_get(corral_json object, const char *key, corral_json *value);
/** A string field, decoded (escapes resolved, `\uXXXX` as UTF-8). */
corral_field corral_json_get_string(corral_json object, const char *key, corral_str *value);
/** A number field that is a whole number within int64 (no fraction, no exponent). */
corral_field corral_json_get_int(corral_json object, const char *key, int64_t *value);
corral_field corral_json_get_number(corral_json object, const char *key, double *value);
corral_field corral_json_get_bool(corral_json object, const char *key, bool *value);
corral_field corral_json_get_object(corral_json object, const char *key, corral_json *value);
corral_field corral_json_get_array(corral_json object, const char *key, corral_json *value);

/* The same conversions of a value itself; false when it is not of that type. */
bool corral_json_string(corral_json value, corral_str *out);
bool corral_json_int(corral_json value, int64_t *out);
bool corral_json_number(corral_json value, double *out);
bool corral_json_bool(corral_json value, bool *out);

/**
 * Steps through an array: start with `*position = 0`; each call gives the next item and returns
 * false after the last one (or when `array` is not an array).
 */
bool corral_json_array_next(corral_json array, size_t *position, corral_json *item);

/* ---- Writing JSON -------------------------------------------------------------------------------- */

/**
 * Builds JSON text; commas and quoting are its business. Start from `corral_writer w = {0};`.
 * A writer that was misused (a value in an object without its key, a key outside an object, two
 * values at the top, nesting past 64) is `failed` and keeps no text.
 */
typedef struct corral_writer {
    char *buf;
    size_t len, cap;
    bool failed;
    bool after_key;
    uint8_t depth;
    uint64_t objects;   /* bit d: the container at depth d is an object */
    uint64_t non_empty; /* bit d: the container at depth d has an item */
} corral_writer;

void corral_write_begin_object(corral_writer *w);
void corral_write_end_object(corral_writer *w);
void corral_write_begin_array(corral_writer *w);
void corral_write_end_array(corral_writer *w);
/** The key of the next value in an object. */
void corral_write_key(corral_writer *w, const char *key);
/** A string (NUL-terminated, or `len` bytes); invalid UTF-8 is written as U+FFFD. */
void corral_write_string(corral_writer *w, const char *text);
void corral_write_string_n(corral_writer *w, const char *text, size_t len);
void corral_write_int(corral_writer *w, int64_t value);
/** A number; NaN and the infinities, which JSON cannot hold, are written as `null`. */
void corral_write_number(corral_writer *w, double value);
void corral_write_bool(corral_writer *w, bool value);
void corral_write_null(corral_writer *w);
/** A JSON value as it is (one read from the input, or from the host). */
void corral_write_json(corral_writer *w, corral_json value);
/** The text written so far, NUL-terminated; NULL if the writer failed. */
const char *corral_writer_text(corral_writer *w);

/* ---- Plugin functions -------------------------------------------------------------------------- */

/**
 * Defines and exports a plugin function `name` (callable as `name` through `Plugin.call`): its
 * body gets the call's arguments as `input` (JSON `null` when there are none) and writes its result
 * to the writer `out` (nothing written: a `null` result), then returns CORRAL_DONE, or returns
 * `corral_fail(...)`.
 */
#define CORRAL_FUNCTION(name, input, out)                                                             \
    static corral_result corral_fn_##name(corral_json input __attribute__((unused)),                  \
                                          corral_writer *out __attribute__((unused)));                \
    CORRAL_EXPORT(#name) uint64_t corral_export_##name(uint8_t *input_ptr, uint32_t input_len) {      \
        return corral_run(input_ptr, input_len, corral_fn_##name);                                    \
    }                                                                                                 \
    static corral_result corral_fn_##name(corral_json input __attribute__((unused)),                  \
                                          corral_writer *out __attribute__((unused)))

/**
 * Fails the current call with a code of the plugin's own (the host reports `<plugin>:<code>`) and a
 * message. Return what it returns.
 */
corral_result corral_fail(const char *code, const char *message);
/**
 * Fails the call for a field that `corral_json_get_*` did not find as expected, as every Corral SDK
 * does: `invalid_argument`, `field "<key>" is missing` or `field "<key>" must be <expected>`, with
 * the field in the error's `fields`.
 */
corral_result corral_fail_field(corral_field found, const char *key, const char *expected);

/** The config `corral_init` received (`{}` before it ran). */
corral_json corral_config(void);

/** printf into memory that lives until the next call. */
const char *corral_format(const char *format, ...) __attribute__((format(printf, 1, 2)));
/** `size` bytes that live until the next call. */
void *corral_scratch(size_t size);

/** Writes to the host's log through the ABI's own `log` import. */
void corral_log(corral_log_level level, const char *message);

/* ---- The host API ------------------------------------------------------------------------------- */

/**
 * The host's answer to a host call: `ok` with the method's `value`, or not, with a Corral error
 * `code` (`permission_denied`, `rate_limited`, `not_found`, ...) and a `message`.
 */
typedef struct corral_reply {
    bool ok;
    corral_json value;
    corral_str code;
    corral_str message;
} corral_reply;

/**
 * Calls any host API method with its arguments as JSON text (NULL: `{}`). The typed functions below
 * call it; their `*_json` arguments are JSON text too (a `corral_writer`'s, or a literal), NULL for
 * none, and their out-parameters may be NULL and are written only when the reply is ok.
 */
corral_reply corral_host_call(const char *method, const char *args_json);

/** `cache.get`: the bytes at `key` in the plugin's cache; `value->ptr` NULL when nothing is there. */
corral_reply corral_cache_get(const char *key, corral_str *value);
/** `cache.set`: stores `len` bytes at `key`; `ttl_seconds` 0 keeps them until deleted. */
corral_reply corral_cache_set(const char *key, const void *value, size_t len, int32_t ttl_seconds);
/** `cache.delete`: `*deleted` says whether there was a value. */
corral_reply corral_cache_delete(const char *key, bool *deleted);
/** `db.query`: `sql` with bound parameters `args_json` (an array); `*rows` an array of objects. */
corral_reply corral_db_query(const char *sql, const char *args_json, corral_json *rows);
/** `db.exec`: `sql` with bound parameters `args_json`; `*rows_affected`. */
corral_reply corral_db_exec(const char *sql, const char *args_json, int64_t *rows_affected);

typedef struct corral_http_response {
    int32_t status;
    corral_json headers; /* an object of strings */
    corral_str body;
} corral_http_response;

/** `http.request`: `headers_json` an object of strings; `body` of `body_len` bytes (NULL: none). */
corral_reply corral_http_request(const char *method, const char *url, const char *headers_json,
                                 const void *body, size_t body_len, corral_http_response *response);
/** `email.send` to `to_count` recipients; `html` (NULL: none) is an HTML alternative of `body`. */
corral_reply corral_email_send(const char *const *to, size_t to_count, const char *subject, const char *body,
                               const char *html);
/** `log`: a message with structured `fields_json` (an object), through the host API. */
corral_reply corral_host_log(corral_log_level level, const char *message, const char *fields_json);
/** `config.get`: a config key the plugin is granted. */
corral_reply corral_config_get(const char *key, corral_json *value);
/** `i18n.translate`: the text of `key`, with `args_json` (an array) filled in. */
corral_reply corral_i18n_translate(const char *key, const char *args_json, corral_str *text);
/** `plugin.call`: another plugin's function `fn` with `args_json`; `*result` its result. */
corral_reply corral_plugin_call(const char *plugin, const char *fn, const char *args_json, corral_json *result);
/** `events.publish`: an event of `type` with `data_json` for the host's subscribers. */
corral_reply corral_events_publish(const char *type, const char *data_json);

/* Below: for CORRAL_FUNCTION only. */
uint64_t corral_run(uint8_t *input, uint32_t len, corral_result (*fn)(corral_json, corral_writer *));

#ifdef __cplusplus
}
#endif

#endif /* CORRAL_H */

/* ==== Implementation ============================================================================== */

#if defined(CORRAL_IMPLEMENTATION) && !defined(CORRAL_IMPLEMENTED)
#define CORRAL_IMPLEMENTED

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORRAL_IMPORT(name) __attribute__((import_module("corral"), import_name(name)))

CORRAL_IMPORT("host_call") uint64_t corral_import_host_call(const char *method, size_t method_len,
                                                            const char *args, size_t args_len);
CORRAL_IMPORT("log") void corral_import_log(int32_t level, const char *message, size_t len);
CORRAL_IMPORT("error") void corral_import_error(const char *payload, size_t len);

/*
 * Memory: every block the header gives out has a header linking it into the scratch list, freed
 * when the next call starts. Blocks the host fills (corral_alloc) join the list once read.
 */
typedef union corral_block {
    struct {
        union corral_block *prev, *next;
    } link;
    max_align_t align;
} corral_block;

static corral_block corral_scratch_list = {.link = {&corral_scratch_list, &corral_scratch_list}};

static void corral_adopt(void *ptr) {
    if (ptr == NULL) return;
    corral_block *block = (corral_block *)ptr - 1;
    block->link.prev = corral_scratch_list.link.prev;
    block->link.next = &corral_scratch_list;
    corral_scratch_list.link.prev->link.next = block;
    corral_scratch_list.link.prev = block;
}

static void corral_unlink(corral_block *block) {
    block->link.prev->link.next = block->link.next;
    block->link.next->link.prev = block->link.prev;
}

static void corral_release_scratch(void) {
    corral_block *block = corral_scratch_list.link.next;
    while (block != &corral_scratch_list) {
        corral_block *next = block->link.next;
        free(block);
        block = next;
    }
    corral_scratch_list.link.prev = corral_scratch_list.link.next = &corral_scratch_list;
}

static void *corral_unlinked_block(size_t size) {
    if (size > SIZE_MAX - sizeof(corral_block)) return NULL;
    corral_block *block = malloc(sizeof(corral_block) + size);
    return block == NULL ? NULL : block + 1;
}

/*
 * Out of memory ends the call with a trap: the host replaces the instance and reports
 * `resource_exhausted` naming the plugin's memory cap, and no code path has to carry a NULL.
 */
static void *corral_or_trap(void *ptr) {
    if (ptr == NULL) __builtin_trap();
    return ptr;
}

void *corral_scratch(size_t size) {
    void *ptr = corral_or_trap(corral_unlinked_block(size));
    corral_adopt(ptr);
    return ptr;
}

/* Grows a scratch block (NULL: a new one), keeping it in the list. */
static void *corral_scratch_grow(void *ptr, size_t size) {
    if (ptr == NULL) return corral_scratch(size);
    corral_block *block = (corral_block *)ptr - 1;
    corral_unlink(block);
    corral_block *grown =
        corral_or_trap(size > SIZE_MAX - sizeof(corral_block) ? NULL : realloc(block, sizeof(corral_block) + size));
    corral_adopt(grown + 1);
    return grown + 1;
}

CORRAL_EXPORT("corral_abi_version") int32_t corral_abi_version(void) { return CORRAL_ABI_VERSION; }

CORRAL_EXPORT("corral_alloc") void *corral_alloc(uint32_t size) { return corral_unlinked_block(size); }

CORRAL_EXPORT("corral_free") void corral_free(void *ptr, uint32_t size) {
    (void)size;
    if (ptr != NULL) free((corral_block *)ptr - 1);
}

const char *corral_format(const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (len < 0) return NULL;
    char *text = corral_scratch((size_t)len + 1);
    va_start(args, format);
    vsnprintf(text, (size_t)len + 1, format, args);
    va_end(args);
    return text;
}

/* ---- JSON reader: a validating scanner over the text; values are spans into it ------------------- */

#define CORRAL_MAX_NESTING 512

static const char *corral_skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int corral_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The end of the string starting at p (its opening quote), or NULL if it is not a valid one. */
static const char *corral_scan_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c != '\\') continue;
        if (++p >= end) return NULL;
        if (*p == 'u') {
            if (end - p < 5) return NULL;
            for (int i = 1; i <= 4; i++)
                if (corral_hex(p[i]) < 0) return NULL;
            p += 4;
        } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
            return NULL;
        }
    }
    return NULL;
}

static const char *corral_scan_digits(const char *p, const char *end) {
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p == start ? NULL : p;
}

static const char *corral_scan_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') p++;
    else if ((p = corral_scan_digits(p, end)) == NULL) return NULL;
    if (p < end && *p == '.' && (p = corral_scan_digits(p + 1, end)) == NULL) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if ((p = corral_scan_digits(p, end)) == NULL) return NULL;
    }
    return p;
}

static const char *corral_scan_literal(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* The end of the value starting at p (no leading space), or NULL if it is not a valid one. */
static const char *corral_scan_value(const char *p, const char *end, int depth) {
    if (p >= end) return NULL;
    switch (*p) {
    case '"': return corral_scan_string(p, end);
    case 't': return corral_scan_literal(p, end, "true");
    case 'f': return corral_scan_literal(p, end, "false");
    case 'n': return corral_scan_literal(p, end, "null");
    case '[':
    case '{': {
        if (depth >= CORRAL_MAX_NESTING) return NULL;
        char close = *p == '[' ? ']' : '}';
        bool object = *p == '{';
        p = corral_skip_space(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (object) {
                if (p >= end || *p != '"' || (p = corral_scan_string(p, end)) == NULL) return NULL;
                p = corral_skip_space(p, end);
                if (p >= end || *p != ':') return NULL;
                p = corral_skip_space(p + 1, end);
            }
            if ((p = corral_scan_value(p, end, depth + 1)) == NULL) return NULL;
            p = corral_skip_space(p, end);
            if (p < end && *p == ',') {
                p = corral_skip_space(p + 1, end);
                continue;
            }
            return p < end && *p == close ? p + 1 : NULL;
        }
    }
    default: return corral_scan_number(p, end);
    }
}

bool corral_json_parse(const char *text, size_t len, corral_json *value) {
    if (text == NULL) return false;
    const char *end = text + len;
    const char *start = corral_skip_space(text, end);
    const char *stop = corral_scan_value(start, end, 0);
    if (stop == NULL || corral_skip_space(stop, end) != end) return false;
    value->text = start;
    value->len = (size_t)(stop - start);
    return true;
}

corral_json_kind corral_json_kind_of(corral_json value) {
    if (value.text == NULL || value.len == 0) return CORRAL_JSON_NONE;
    switch (value.text[0]) {
    case 'n': return CORRAL_JSON_NULL;
    case 't':
    case 'f': return CORRAL_JSON_BOOL;
    case '"': return CORRAL_JSON_STRING;
    case '[': return CORRAL_JSON_ARRAY;
    case '{': return CORRAL_JSON_OBJECT;
    default: return CORRAL_JSON_NUMBER;
    }
}

/* Writes the UTF-8 of code point cp at out; returns how many bytes. */
static size_t corral_put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t corral_hex4(const char *p) {
    return (uint32_t)(corral_hex(p[0]) << 12 | corral_hex(p[1]) << 8 | corral_hex(p[2]) << 4 | corral_hex(p[3]));
}

/* Decodes a checked string value; an unpaired surrogate becomes U+FFFD. Never longer than its text. */
bool corral_json_string(corral_json value, corral_str *out) {
    if (corral_json_kind_of(value) != CORRAL_JSON_STRING) return false;
    char *text = corral_scratch(value.len);
    const char *p = value.text + 1, *end = value.text + value.len - 1;
    size_t n = 0;
    while (p < end) {
        if (*p != '\\') {
            text[n++] = *p++;
            continue;
        }
        char escape = p[1];
        p += 2;
        if (escape != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            text[n++] = to[strchr(from, escape) - from];
            continue;
        }
        uint32_t cp = corral_hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            uint32_t low = corral_hex4(p + 2);
            if (low >= 0xDC00 && low < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                p += 6;
            }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
        n += corral_put_utf8(text + n, cp);
    }
    text[n] = '\0';
    out->ptr = text;
    out->len = n;
    return true;
}

bool corral_json_int(corral_json value, int64_t *out) {
    if (corral_json_kind_of(value) != CORRAL_JSON_NUMBER) return false;
    const char *p = value.text, *end = value.text + value.len;
    bool negative = *p == '-';
    if (negative) p++;
    uint64_t magnitude = 0;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return false; /* a fraction or an exponent */
        uint64_t digit = (uint64_t)(*p - '0');
        if (magnitude > (limit - digit) / 10) return false;
        magnitude = magnitude * 10 + digit;
    }
    *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return true;
}

bool corral_json_number(corral_json value, double *out) {
    if (corral_json_kind_of(value) != CORRAL_JSON_NUMBER) return false;
    char digits[64];
    if (value.len >= sizeof digits) {
        char *copy = corral_scratch(value.len + 1);
        memcpy(copy, value.text, value.len);
        copy[value.len] = '\0';
        *out = strtod(copy, NULL);
        return true;
    }
    memcpy(digits, value.text, value.len);
    digits[value.len] = '\0';
    *out = strtod(digits, NULL);
    return true;
}

bool corral_json_bool(corral_json value, bool *out) {
    if (corral_json_kind_of(value) != CORRAL_JSON_BOOL) return false;
    *out = value.text[0] == 't';
    return true;
}

/* Whether the raw string token at p (quote to quote) decodes to key, without allocating. */
static bool corral_key_equals(const char *p, const char *stop, const char *key) {
    corral_json token = {p, (size_t)(stop - p)};
    if (memchr(p, '\\', token.len) == NULL) {
        size_t n = strlen(key);
        return token.len == n + 2 && memcmp(p + 1, key, n) == 0;
    }
    corral_str decoded;
    return corral_json_string(token, &decoded) && decoded.len == strlen(key) && memcmp(decoded.ptr, key, decoded.len) == 0;
}

corral_field corral_json_get(corral_json object, const char *key, corral_json *value) {
    if (corral_json_kind_of(object) != CORRAL_JSON_OBJECT) return CORRAL_FIELD_MISSING;
    const char *end = object.text + object.len;
    const char *p = corral_skip_space(object.text + 1, end);
    while (p < end && *p == '"') {
        const char *key_end = corral_scan_string(p, end);
        bool match = corral_key_equals(p, key_end, key);
        const char *start = corral_skip_space(corral_skip_space(key_end, end) + 1, end);
        const char *stop = corral_scan_value(start, end, 0);
        if (match) {
            corral_json found = {start, (size_t)(stop - start)};
            if (corral_json_kind_of(found) == CORRAL_JSON_NULL) return CORRAL_FIELD_MISSING;
            *value = found;
            return CORRAL_FIELD_OK;
        }
        p = corral_skip_space(stop, end);
        if (*p == ',') p = corral_skip_space(p + 1, end);
    }
    return CORRAL_FIELD_MISSING;
}

static corral_field corral_get_kind(corral_json object, const char *key, corral_json_kind kind, corral_json *value) {
    corral_json found;
    corral_field status = corral_json_get(object, key, &found);
    if (status != CORRAL_FIELD_OK) return status;
    if (corral_json_kind_of(found) != kind) return CORRAL_FIELD_WRONG_TYPE;
    *value = found;
    return CORRAL_FIELD_OK;
}

corral_field corral_json_get_string(corral_json object, const char *key, corral_str *value) {
    corral_json found;
    corral_field status = corral_get_kind(object, key, CORRAL_JSON_STRING, &found);
    if (status == CORRAL_FIELD_OK) corral_json_string(found, value);
    return status;
}

corral_field corral_json_get_int(corral_json object, const char *key, int64_t *value) {
    corral_json found;
    corral_field status = corral_get_kind(object, key, CORRAL_JSON_NUMBER, &found);
    if (status == CORRAL_FIELD_OK && !corral_json_int(found, value)) return CORRAL_FIELD_WRONG_TYPE;
    return status;
}

corral_field corral_json_get_number(corral_json object, const char *key, double *value) {
    corral_json found;
    corral_field status = corral_get_kind(object, key, CORRAL_JSON_NUMBER, &found);
    if (status == CORRAL_FIELD_OK) corral_json_number(found, value);
    return status;
}

corral_field corral_json_get_bool(corral_json object, const char *key, bool *value) {
    corral_json found;
    corral_field status = corral_get_kind(object, key, CORRAL_JSON_BOOL, &found);
    if (status == CORRAL_FIELD_OK) corral_json_bool(found, value);
    return status;
}

corral_field corral_json_get_object(corral_json object, const char *key, corral_json *value) {
    return corral_get_kind(object, key, CORRAL_JSON_OBJECT, value);
}

corral_field corral_json_get_array(corral_json object, const char *key, corral_json *value) {
    return corral_get_kind(object, key, CORRAL_JSON_ARRAY, value);
}

bool corral_json_array_next(corral_json array, size_t *position, corral_json *item) {
    if (corral_json_kind_of(array) != CORRAL_JSON_ARRAY) return false;
    const char *end = array.text + array.len;
    const char *p = corral_skip_space(array.text + (*position == 0 ? 1 : *position), end);
    if (*p == ',') p = corral_skip_space(p + 1, end);
    if (*p == ']') return false;
    const char *stop = corral_scan_value(p, end, 0);
    item->text = p;
    item->len = (size_t)(stop - p);
    *position = (size_t)(stop - array.text);
    return true;
}

/* ---- JSON writer ----------------------------------------------------------------------------------- */

#define CORRAL_MAX_WRITER_DEPTH 64

static void corral_put(corral_writer *w, const char *bytes, size_t n) {
    if (w->failed) return;
    if (w->cap - w->len <= n) { /* keeps a byte for the NUL */
        size_t cap = w->cap < 256 ? 256 : w->cap;
        while (cap - w->len <= n) {
            if (cap > SIZE_MAX / 2) {
                w->failed = true;
                return;
            }
            cap *= 2;
        }
        w->buf = corral_scratch_grow(w->buf, cap);
        w->cap = cap;
    }
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static bool corral_in_object(const corral_writer *w) {
    return w->depth > 0 && (w->objects >> (w->depth - 1) & 1);
}

/* Before any value: the comma after an array's previous item, or the key's place in an object. */
static void corral_before_value(corral_writer *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (corral_in_object(w)) {
        w->failed = true; /* a value in an object needs its key first */
        return;
    }
    if (w->depth > 0) {
        uint64_t bit = (uint64_t)1 << (w->depth - 1);
        if (w->non_empty & bit) corral_put(w, ",", 1);
        w->non_empty |= bit;
    } else if (w->len > 0) {
        w->failed = true; /* one value per writer */
    }
}

static void corral_begin(corral_writer *w, bool object) {
    corral_before_value(w);
    if (w->depth >= CORRAL_MAX_WRITER_DEPTH) {
        w->failed = true;
        return;
    }
    uint64_t bit = (uint64_t)1 << w->depth;
    w->objects = object ? w->objects | bit : w->objects & ~bit;
    w->non_empty &= ~bit;
    w->depth++;
    corral_put(w, object ? "{" : "[", 1);
}

static void corral_end(corral_writer *w, bool object) {
    if (w->depth == 0 || corral_in_object(w) != object || w->after_key) {
        w->failed = true;
        return;
    }
    w->depth--;
    corral_put(w, object ? "}" : "]", 1);
}

void corral_write_begin_object(corral_writer *w) { corral_begin(w, true); }
void corral_write_end_object(corral_writer *w) { corral_end(w, true); }
void corral_write_begin_array(corral_writer *w) { corral_begin(w, false); }
void corral_write_end_array(corral_writer *w) { corral_end(w, false); }

/* The length of the valid UTF-8 sequence at p, or 0. */
static size_t corral_utf8_length(const unsigned char *p, size_t available) {
    size_t n;
    uint32_t min;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) n = 2, min = 0x80;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) n = 3, min = 0x800;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) n = 4, min = 0x10000;
    else return 0;
    if (available < n) return 0;
    uint32_t cp = p[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
    return n;
}

static void corral_put_quoted(corral_writer *w, const char *text, size_t len) {
    const unsigned char *p = (const unsigned char *)text, *end = p + len;
    corral_put(w, "\"", 1);
    while (p < end) {
        const unsigned char *run = p; /* bytes that go out as they are */
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80) p++;
        corral_put(w, (const char *)run, (size_t)(p - run));
        if (p == end) break;
        if (*p >= 0x80) {
            size_t n = corral_utf8_length(p, (size_t)(end - p));
            if (n == 0) {
                corral_put(w, "\\ufffd", 6);
                p++;
            } else {
                corral_put(w, (const char *)p, n);
                p += n;
            }
            continue;
        }
        char escaped[8];
        switch (*p) {
        case '"': memcpy(escaped, "\\\"", 2); break;
        case '\\': memcpy(escaped, "\\\\", 2); break;
        case '\n': memcpy(escaped, "\\n", 2); break;
        case '\r': memcpy(escaped, "\\r", 2); break;
        case '\t': memcpy(escaped, "\\t", 2); break;
        default: snprintf(escaped, sizeof escaped, "\\u%04x", *p); break;
        }
        corral_put(w, escaped, escaped[1] == 'u' ? 6 : 2);
        p++;
    }
    corral_put(w, "\"", 1);
}

void corral_write_key(corral_writer *w, const char *key) {
    if (!corral_in_object(w) || w->after_key) {
        w->failed = true;
        return;
    }
    uint64_t bit = (uint64_t)1 << (w->depth - 1);
    if (w->non_empty & bit) corral_put(w, ",", 1);
    w->non_empty |= bit;
    corral_put_quoted(w, key, strlen(key));
    corral_put(w, ":", 1);
    w->after_key = true;
}

void corral_write_string_n(corral_writer *w, const char *text, size_t len) {
    corral_before_value(w);
    corral_put_quoted(w, text, len);
}

void corral_write_string(corral_writer *w, const char *text) {
    if (text == NULL) corral_write_null(w);
    else corral_write_string_n(w, text, strlen(text));
}

void corral_write_int(corral_writer *w, int64_t value) {
    char digits[24];
    corral_before_value(w);
    corral_put(w, digits, (size_t)snprintf(digits, sizeof digits, "%lld", (long long)value));
}

void corral_write_number(corral_writer *w, double value) {
    if (value != value || value > DBL_MAX || value < -DBL_MAX) {
        corral_write_null(w);
        return;
    }
    /* The shortest of 15 or 17 digits that reads back as the same double. */
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%.15g", value);
    if (strtod(digits, NULL) != value) len = snprintf(digits, sizeof digits, "%.17g", value);
    corral_before_value(w);
    corral_put(w, digits, (size_t)len);
}

void corral_write_bool(corral_writer *w, bool value) {
    corral_before_value(w);
    corral_put(w, value ? "true" : "false", value ? 4 : 5);
}

void corral_write_null(corral_writer *w) {
    corral_before_value(w);
    corral_put(w, "null", 4);
}

void corral_write_json(corral_writer *w, corral_json value) {
    if (value.text == NULL) value = (corral_json){"null", 4};
    corral_before_value(w);
    corral_put(w, value.text, value.len);
}

const char *corral_writer_text(corral_writer *w) {
    if (w->failed) return NULL;
    if (w->buf == NULL) corral_put(w, "", 0);
    return w->failed ? NULL : w->buf;
}

/* ---- Calls, errors, config ------------------------------------------------------------------------- */

static bool corral_error_set = false;
static char *corral_config_text = NULL; /* outlives calls: malloc'd, replaced by each corral_init */
static size_t corral_config_len = 0;

/* The error `{code, message}`, with `fields: [{field, message}]` when `field` is not NULL. */
static void corral_set_error(const char *code, const char *message, const char *field, const char *problem) {
    corral_writer w = {0};
    corral_write_begin_object(&w);
    corral_write_key(&w, "code");
    corral_write_string(&w, code);
    corral_write_key(&w, "message");
    corral_write_string(&w, message);
    if (field != NULL) {
        corral_write_key(&w, "fields");
        corral_write_begin_array(&w);
        corral_write_begin_object(&w);
        corral_write_key(&w, "field");
        corral_write_string(&w, field);
        corral_write_key(&w, "message");
        corral_write_string(&w, problem);
        corral_write_end_object(&w);
        corral_write_end_array(&w);
    }
    corral_write_end_object(&w);
    const char *text = corral_writer_text(&w);
    if (text == NULL) text = "{\"code\":\"failed\",\"message\":\"the error code or message is not text\"}";
    corral_import_error(text, strlen(text));
    corral_error_set = true;
}

corral_result corral_fail(const char *code, const char *message) {
    corral_set_error(code, message, NULL, NULL);
    return CORRAL_FAILED;
}

corral_result corral_fail_field(corral_field found, const char *key, const char *expected) {
    const char *problem = found == CORRAL_FIELD_WRONG_TYPE ? corral_format("must be %s", expected) : "is missing";
    corral_set_error("invalid_argument", corral_format("field \"%s\" %s", key, problem), key, problem);
    return CORRAL_FAILED;
}

static uint64_t corral_pack(const void *ptr, size_t len) { return (uint64_t)(uintptr_t)ptr << 32 | (uint64_t)len; }

uint64_t corral_run(uint8_t *input, uint32_t len, corral_result (*fn)(corral_json, corral_writer *)) {
    corral_release_scratch(); /* the previous call's memory, its output included: the host has copied it */
    corral_adopt(input);
    corral_error_set = false;
    corral_json arguments = {"null", 4};
    if (len > 0 && !corral_json_parse((const char *)input, len, &arguments)) {
        corral_fail("invalid_input", "the input is not JSON");
        return 0;
    }
    corral_writer out = {0};
    corral_result result = fn(arguments, &out);
    if (corral_error_set) return 0;
    if (result != CORRAL_DONE) {
        corral_fail("failed", "the function failed without saying why");
        return 0;
    }
    if (out.failed || out.depth > 0) {
        corral_fail("invalid_output", "the function's output is not complete JSON");
        return 0;
    }
    return out.len == 0 ? 0 : corral_pack(out.buf, out.len);
}

static corral_result corral_store_config(corral_json input, corral_writer *out) {
    (void)out;
    corral_json config;
    if (corral_json_get_object(input, "config", &config) != CORRAL_FIELD_OK) return CORRAL_DONE;
    char *copy = corral_or_trap(malloc(config.len));
    memcpy(copy, config.text, config.len);
    free(corral_config_text);
    corral_config_text = copy;
    corral_config_len = config.len;
    return CORRAL_DONE;
}

CORRAL_EXPORT("corral_init") uint64_t corral_init(uint8_t *input, uint32_t len) {
    return corral_run(input, len, corral_store_config);
}

corral_json corral_config(void) {
    corral_json config = {"{}", 2};
    if (corral_config_text != NULL) config = (corral_json){corral_config_text, corral_config_len};
    return config;
}

void corral_log(corral_log_level level, const char *message) {
    corral_import_log((int32_t)level, message, strlen(message));
}

/* ---- Host API ---------------------------------------------------------------------------------------- */

static const char corral_base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char *corral_base64_encode(const void *data, size_t len) {
    const unsigned char *in = data;
    char *out = corral_scratch((len + 2) / 3 * 4 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t chunk = (uint32_t)in[i] << 16;
        if (i + 1 < len) chunk |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) chunk |= in[i + 2];
        out[n++] = corral_base64_alphabet[chunk >> 18 & 63];
        out[n++] = corral_base64_alphabet[chunk >> 12 & 63];
        out[n++] = i + 1 < len ? corral_base64_alphabet[chunk >> 6 & 63] : '=';
        out[n++] = i + 2 < len ? corral_base64_alphabet[chunk & 63] : '=';
    }
    out[n] = '\0';
    return out;
}

static int corral_base64_digit(char c) {
    const char *at = c == '\0' ? NULL : strchr(corral_base64_alphabet, c);
    return at == NULL ? -1 : (int)(at - corral_base64_alphabet);
}

static bool corral_base64_decode(corral_str text, corral_str *out) {
    char *bytes = corral_scratch(text.len / 4 * 3 + 3);
    size_t n = 0;
    uint32_t bits = 0;
    int count = 0;
    for (size_t i = 0; i < text.len && text.ptr[i] != '='; i++) {
        int digit = corral_base64_digit(text.ptr[i]);
        if (digit < 0) return false;
        bits = bits << 6 | (uint32_t)digit;
        if (++count == 4) {
            bytes[n++] = (char)(bits >> 16);
            bytes[n++] = (char)(bits >> 8);
            bytes[n++] = (char)bits;
            bits = 0;
            count = 0;
        }
    }
    if (count == 1) return false;
    if (count >= 2) bytes[n++] = (char)(bits >> (count == 2 ? 4 : 10));
    if (count == 3) bytes[n++] = (char)(bits >> 2);
    bytes[n] = '\0';
    out->ptr = bytes;
    out->len = n;
    return true;
}

static corral_reply corral_refused(const char *code, const char *message) {
    corral_reply reply = {false, {NULL, 0}, {code, strlen(code)}, {message, strlen(message)}};
    return reply;
}

corral_reply corral_host_call(const char *method, const char *args_json) {
    if (args_json == NULL) args_json = "{}";
    uint64_t packed = corral_import_host_call(method, strlen(method), args_json, strlen(args_json));
    if (packed == 0) return corral_refused("resource_exhausted", "no memory for the host's answer");
    const char *text = (const char *)(uintptr_t)(packed >> 32);
    size_t len = (size_t)(packed & 0xFFFFFFFFu);
    corral_adopt((void *)(uintptr_t)text);
    corral_json answer, value;
    if (!corral_json_parse(text, len, &answer)) return corral_refused("internal", "the host answered with invalid JSON");
    if (corral_json_get_object(answer, "error", &value) == CORRAL_FIELD_OK) {
        corral_reply reply = corral_refused("internal", "the host refused without a code");
        corral_json_get_string(value, "code", &reply.code);
        corral_json_get_string(value, "message", &reply.message);
        return reply;
    }
    corral_reply reply = {true, {"null", 4}, {NULL, 0}, {NULL, 0}};
    corral_json_get(answer, "ok", &reply.value);
    return reply;
}

/* The arguments of a typed host call: an object, its fields written by the caller. */
static corral_writer corral_args_begin(void) {
    corral_writer w = {0};
    corral_write_begin_object(&w);
    return w;
}

static void corral_args_string(corral_writer *w, const char *key, const char *value) {
    corral_write_key(w, key);
    corral_write_string(w, value);
}

/* A JSON text argument: written as it is when it is valid JSON, NULL leaves the field out. */
static void corral_args_json(corral_writer *w, const char *key, const char *json) {
    if (json == NULL) return;
    corral_json value;
    if (!corral_json_parse(json, strlen(json), &value)) {
        w->failed = true;
        return;
    }
    corral_write_key(w, key);
    corral_write_json(w, value);
}

static corral_reply corral_args_call(const char *method, corral_writer *w) {
    corral_write_end_object(w);
    const char *args = corral_writer_text(w);
    if (args == NULL) return corral_refused("invalid_argument", "arguments that are not JSON");
    return corral_host_call(method, args);
}

corral_reply corral_cache_get(const char *key, corral_str *value) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "key", key);
    corral_reply reply = corral_args_call("cache.get", &w);
    if (!reply.ok || value == NULL) return reply;
    corral_str stored;
    value->ptr = NULL;
    value->len = 0;
    if (corral_json_get_string(reply.value, "value", &stored) == CORRAL_FIELD_OK && !corral_base64_decode(stored, value))
        return corral_refused("internal", "the cached value is not base64");
    return reply;
}

corral_reply corral_cache_set(const char *key, const void *value, size_t len, int32_t ttl_seconds) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "key", key);
    corral_args_string(&w, "value", corral_base64_encode(value, len));
    if (ttl_seconds > 0) {
        corral_write_key(&w, "ttl_seconds");
        corral_write_int(&w, ttl_seconds);
    }
    return corral_args_call("cache.set", &w);
}

corral_reply corral_cache_delete(const char *key, bool *deleted) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "key", key);
    corral_reply reply = corral_args_call("cache.delete", &w);
    if (reply.ok && deleted != NULL) {
        *deleted = false;
        corral_json_get_bool(reply.value, "deleted", deleted);
    }
    return reply;
}

static corral_reply corral_sql(const char *method, const char *sql, const char *args_json) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "sql", sql);
    corral_args_json(&w, "args", args_json);
    return corral_args_call(method, &w);
}

corral_reply corral_db_query(const char *sql, const char *args_json, corral_json *rows) {
    corral_reply reply = corral_sql("db.query", sql, args_json);
    if (reply.ok && rows != NULL && corral_json_get_array(reply.value, "rows", rows) != CORRAL_FIELD_OK)
        return corral_refused("internal", "the host's answer has no rows");
    return reply;
}

corral_reply corral_db_exec(const char *sql, const char *args_json, int64_t *rows_affected) {
    corral_reply reply = corral_sql("db.exec", sql, args_json);
    if (reply.ok && rows_affected != NULL && corral_json_get_int(reply.value, "rows_affected", rows_affected) != CORRAL_FIELD_OK)
        return corral_refused("internal", "the host's answer has no rows_affected");
    return reply;
}

corral_reply corral_http_request(const char *method, const char *url, const char *headers_json,
                                 const void *body, size_t body_len, corral_http_response *response) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "method", method);
    corral_args_string(&w, "url", url);
    corral_args_json(&w, "headers", headers_json);
    if (body != NULL) corral_args_string(&w, "body", corral_base64_encode(body, body_len));
    corral_reply reply = corral_args_call("http.request", &w);
    if (!reply.ok || response == NULL) return reply;
    int64_t status = 0;
    corral_str body64 = {"", 0};
    corral_json_get_int(reply.value, "status", &status);
    corral_json_get_string(reply.value, "body", &body64);
    response->status = (int32_t)status;
    response->headers = (corral_json){"{}", 2};
    corral_json_get_object(reply.value, "headers", &response->headers);
    if (!corral_base64_decode(body64, &response->body)) return corral_refused("internal", "the response body is not base64");
    return reply;
}

corral_reply corral_email_send(const char *const *to, size_t to_count, const char *subject, const char *body,
                               const char *html) {
    corral_writer w = corral_args_begin();
    corral_write_key(&w, "to");
    corral_write_begin_array(&w);
    for (size_t i = 0; i < to_count; i++) corral_write_string(&w, to[i]);
    corral_write_end_array(&w);
    corral_args_string(&w, "subject", subject);
    corral_args_string(&w, "body", body);
    if (html != NULL) corral_args_string(&w, "html", html);
    return corral_args_call("email.send", &w);
}

corral_reply corral_host_log(corral_log_level level, const char *message, const char *fields_json) {
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "level", names[(unsigned)level <= CORRAL_LOG_ERROR ? level : CORRAL_LOG_ERROR]);
    corral_args_string(&w, "message", message);
    corral_args_json(&w, "fields", fields_json);
    return corral_args_call("log", &w);
}

corral_reply corral_config_get(const char *key, corral_json *value) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "key", key);
    corral_reply reply = corral_args_call("config.get", &w);
    if (reply.ok && value != NULL) {
        *value = (corral_json){"null", 4};
        corral_json_get(reply.value, "value", value);
    }
    return reply;
}

corral_reply corral_i18n_translate(const char *key, const char *args_json, corral_str *text) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "key", key);
    corral_args_json(&w, "args", args_json);
    corral_reply reply = corral_args_call("i18n.translate", &w);
    if (reply.ok && text != NULL && corral_json_get_string(reply.value, "text", text) != CORRAL_FIELD_OK)
        return corral_refused("internal", "the host's answer has no text");
    return reply;
}

corral_reply corral_plugin_call(const char *plugin, const char *fn, const char *args_json, corral_json *result) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "plugin", plugin);
    corral_args_string(&w, "fn", fn);
    corral_args_json(&w, "args", args_json);
    corral_reply reply = corral_args_call("plugin.call", &w);
    if (reply.ok && result != NULL) *result = reply.value;
    return reply;
}

corral_reply corral_events_publish(const char *type, const char *data_json) {
    corral_writer w = corral_args_begin();
    corral_args_string(&w, "type", type);
    corral_args_json(&w, "data", data_json);
    return corral_args_call("events.publish", &w);
}

#endif /* CORRAL_IMPLEMENTATION */
