/*
 * c-wasm: word and vowel counts, and a dashboard widget, written in C against Corral ABI v1 (ABI.md) with no SDK at all,
 * to show that the ABI is language-neutral. Built by clang for wasm32-wasi as a reactor.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CORRAL_IMPORT(name) __attribute__((import_module("corral"), import_name(name)))
#define CORRAL_EXPORT(name) __attribute__((export_name(name)))

CORRAL_IMPORT("log") void corral_log(int32_t level, const char *message, uint32_t len);
CORRAL_IMPORT("error") void corral_error(const char *message, uint32_t len);

CORRAL_EXPORT("corral_abi_version") int32_t corral_abi_version(void) { return 1; }

CORRAL_EXPORT("corral_alloc") void *corral_alloc(int32_t size) { return malloc((size_t)size); }

CORRAL_EXPORT("corral_free") void corral_free(void *ptr, int32_t size) {
    (void)size;
    free(ptr);
}

/* The last output stays ours until the host has copied it: freed when we are next entered. */
static char *last_output = NULL;

static void release_output(void) {
    free(last_output);
    last_output = NULL;
}

static uint64_t pack(const char *ptr, size_t len) {
    return ((uint64_t)(uintptr_t)ptr << 32) | (uint64_t)len;
}

static uint64_t fail(const char *json) {
    corral_error(json, (uint32_t)strlen(json));
    return 0;
}

/* Writes the decimal digits of n at out; returns how many. */
static size_t put_number(char *out, size_t n) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    for (size_t i = 0; i < count; i++) out[i] = digits[count - 1 - i];
    return count;
}

/*
 * Finds the string value of "text" in a JSON object and counts over it. Escapes count as the
 * character they stand for; \uXXXX as one non-vowel character.
 */
static int count_text(const char *json, size_t len, size_t *chars, size_t *words, size_t *vowels) {
    static const char key[] = "\"text\"";
    const char *end = json + len;
    const char *p = json;
    for (; p + sizeof key - 1 <= end; p++) {
        if (memcmp(p, key, sizeof key - 1) == 0) break;
    }
    if (p + sizeof key - 1 > end) return 0;
    p += sizeof key - 1;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
    if (p >= end || *p != '"') return 0;
    p++;
    int in_word = 0;
    *chars = *words = *vowels = 0;
    while (p < end && *p != '"') {
        char c = *p;
        if (c == '\\' && p + 1 < end) {
            p++;
            c = *p == 'n' || *p == 't' || *p == 'r' ? ' ' : *p;
            if (*p == 'u') {
                c = 'x';
                p += 4;
            }
        }
        if (((unsigned char)c & 0xC0) != 0x80) (*chars)++; /* count UTF-8 lead bytes only */
        int space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in_word) (*words)++;
        in_word = !space;
        if (strchr("aeiouAEIOU", c) != NULL && c != '\0') (*vowels)++;
        p++;
    }
    return p < end;
}

/* {"text": "..."} -> {"chars": n, "words": n, "vowels": n}; c-wasm:missing_text without text. */
CORRAL_EXPORT("count") uint64_t count(char *input, int32_t len) {
    release_output();
    size_t chars, words, vowels;
    int found = input != NULL && count_text(input, (size_t)len, &chars, &words, &vowels);
    free(input); /* the input is ours from the moment the host handed it over */
    if (!found) return fail("{\"code\":\"missing_text\",\"message\":\"send {\\\"text\\\": \\\"...\\\"}\"}");

    last_output = malloc(96);
    if (last_output == NULL) return fail("{\"code\":\"out_of_memory\",\"message\":\"no memory for the result\"}");
    size_t n = 0;
    memcpy(last_output + n, "{\"chars\":", 9), n += 9;
    n += put_number(last_output + n, chars);
    memcpy(last_output + n, ",\"words\":", 9), n += 9;
    n += put_number(last_output + n, words);
    memcpy(last_output + n, ",\"vowels\":", 10), n += 10;
    n += put_number(last_output + n, vowels);
    last_output[n++] = '}';

    static const char note[] = "counted a text";
    corral_log(1, note, sizeof note - 1);
    return pack(last_output, n);
}

/* The dashboard widget: any input (the host's widget arguments) -> an HTML fragment, as a JSON string. */
CORRAL_EXPORT("widget") uint64_t widget(char *input, int32_t len) {
    (void)len;
    release_output();
    free(input);
    static const char html[] =
        "\"<p>Word and vowel counts, written in C: POST <code>{\\\"text\\\": \\\"...\\\"}</code>"
        " to <code>/plugins/c-wasm/count</code>.</p>\"";
    return pack(html, sizeof html - 1);
}
