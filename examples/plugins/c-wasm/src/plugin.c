/*
 * c-wasm: word and vowel counts, and a dashboard widget, written in C with corral.h (the C SDK of
 * @corral/plugin-sdk). Built by clang for wasm32-wasi as a reactor.
 */
#include <string.h>

#define CORRAL_IMPLEMENTATION
#include "corral.h"

static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static bool is_vowel(char c) { return c != '\0' && strchr("aeiouAEIOU", c) != NULL; }

/*
 * The text to count: the call's "text" or, when the host routes an HTTP request here (POST
 * /plugins/c-wasm/count), the "text" of its query or of its JSON body (the request's "body" is the
 * body as text, parsed here).
 */
static corral_field text_of(corral_json input, corral_str *text) {
    corral_json part;
    corral_str body;
    corral_field found = corral_json_get_string(input, "text", text);
    if (found == CORRAL_FIELD_MISSING && corral_json_get_object(input, "query", &part) == CORRAL_FIELD_OK)
        found = corral_json_get_string(part, "text", text);
    if (found == CORRAL_FIELD_MISSING && corral_json_get_string(input, "body", &body) == CORRAL_FIELD_OK &&
        corral_json_parse(body.ptr, body.len, &part))
        found = corral_json_get_string(part, "text", text);
    return found;
}

/* {"text": "..."} -> {"chars": n, "words": n, "vowels": n}; c-wasm:missing_text without a text. */
CORRAL_FUNCTION(count, input, out) {
    corral_str text;
    corral_field found = text_of(input, &text);
    if (found == CORRAL_FIELD_MISSING) return corral_fail("missing_text", "send {\"text\": \"...\"}");
    if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "text", "a string");

    int64_t chars = 0, words = 0, vowels = 0;
    bool in_word = false;
    for (size_t i = 0; i < text.len; i++) {
        char c = text.ptr[i];
        if (((unsigned char)c & 0xC0) != 0x80) chars++; /* UTF-8 lead bytes: one per character */
        if (!is_space(c) && !in_word) words++;
        in_word = !is_space(c);
        if (is_vowel(c)) vowels++;
    }

    corral_write_begin_object(out);
    corral_write_key(out, "chars");
    corral_write_int(out, chars);
    corral_write_key(out, "words");
    corral_write_int(out, words);
    corral_write_key(out, "vowels");
    corral_write_int(out, vowels);
    corral_write_end_object(out);
    /* Logged with the counts as fields; a log line the host refuses (rate-capped) costs no answer. */
    corral_host_log(CORRAL_LOG_DEBUG, "counted a text", corral_writer_text(out));
    return CORRAL_DONE;
}

/* The dashboard widget: any input (the host's widget arguments) -> an HTML fragment, as a JSON string. */
CORRAL_FUNCTION(widget, input, out) {
    corral_write_string(out, "<p>Word and vowel counts, written in C: POST <code>{\"text\": \"...\"}</code>"
                             " to <code>/plugins/c-wasm/count</code>.</p>");
    return CORRAL_DONE;
}
