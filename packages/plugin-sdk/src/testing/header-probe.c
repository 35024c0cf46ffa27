/*
 * A plugin that exercises corral.h for its tests (c-header.int.test.ts): each function reports what
 * the header read, wrote or got from the host, so the test can check it from outside.
 */
#define CORRAL_IMPLEMENTATION
#include "corral.h"

static const char *field_status(corral_field found) {
    return found == CORRAL_FIELD_OK ? "ok" : found == CORRAL_FIELD_MISSING ? "missing" : "wrong_type";
}

/* {"s", "i", "n", "b", "o", "a"} → for each, its status and, when found, the value as read. */
CORRAL_FUNCTION(fields, input, out) {
    corral_str s;
    int64_t i;
    double n;
    bool b;
    corral_json o, a;
    corral_field found;
    corral_write_begin_object(out);

    found = corral_json_get_string(input, "s", &s);
    corral_write_key(out, "s");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) {
        corral_write_string_n(out, s.ptr, s.len);
        corral_write_int(out, (int64_t)s.len);
    }
    corral_write_end_array(out);

    found = corral_json_get_int(input, "i", &i);
    corral_write_key(out, "i");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) corral_write_string(out, corral_format("%lld", (long long)i));
    corral_write_end_array(out);

    found = corral_json_get_number(input, "n", &n);
    corral_write_key(out, "n");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) corral_write_number(out, n);
    corral_write_end_array(out);

    found = corral_json_get_bool(input, "b", &b);
    corral_write_key(out, "b");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) corral_write_bool(out, b);
    corral_write_end_array(out);

    found = corral_json_get_object(input, "o", &o);
    corral_write_key(out, "o");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) corral_write_json(out, o);
    corral_write_end_array(out);

    found = corral_json_get_array(input, "a", &a);
    corral_write_key(out, "a");
    corral_write_begin_array(out);
    corral_write_string(out, field_status(found));
    if (found == CORRAL_FIELD_OK) {
        size_t position = 0;
        corral_json item;
        int64_t count = 0;
        while (corral_json_array_next(a, &position, &item)) count++;
        corral_write_int(out, count);
    }
    corral_write_end_array(out);

    corral_write_end_object(out);
    return CORRAL_DONE;
}

/* {"name": string} → the name; fails the header's way for a missing or mistyped name. */
CORRAL_FUNCTION(require_name, input, out) {
    corral_str name;
    corral_field found = corral_json_get_string(input, "name", &name);
    if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "name", "a string");
    corral_write_string(out, name.ptr);
    return CORRAL_DONE;
}

/* An array of strings → the same strings, decoded and written again. */
CORRAL_FUNCTION(strings, input, out) {
    size_t position = 0;
    corral_json item;
    corral_str text;
    corral_write_begin_array(out);
    while (corral_json_array_next(input, &position, &item)) {
        if (!corral_json_string(item, &text)) return corral_fail("not_a_string", "every item must be a string");
        corral_write_string_n(out, text.ptr, text.len);
    }
    corral_write_end_array(out);
    return CORRAL_DONE;
}

/* Bytes that are not UTF-8 (a lone continuation byte, a cut sequence, an overlong '/') among text. */
CORRAL_FUNCTION(invalid_utf8, input, out) {
    static const char bytes[] = "a\x80" "b\xC3" "c\xC0\xAF" "d\xE2\x82\xAC";
    corral_write_string_n(out, bytes, sizeof bytes - 1);
    return CORRAL_DONE;
}

/* {"count": n} → a string of n characters, "0123456789" over and over. */
CORRAL_FUNCTION(big, input, out) {
    int64_t count;
    corral_field found = corral_json_get_int(input, "count", &count);
    if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "count", "a whole number");
    char *text = corral_scratch((size_t)count);
    if (text == NULL) return corral_fail("out_of_memory", "no memory for the text");
    for (int64_t i = 0; i < count; i++) text[i] = (char)('0' + i % 10);
    corral_write_string_n(out, text, (size_t)count);
    return CORRAL_DONE;
}

/* Numbers at the edges of what the writer holds. */
CORRAL_FUNCTION(numbers, input, out) {
    corral_write_begin_array(out);
    corral_write_int(out, INT64_MIN);
    corral_write_int(out, INT64_MAX);
    corral_write_number(out, 0.1);
    corral_write_number(out, 1e300 * 1e300);
    corral_write_number(out, 0.0 / 0.0);
    corral_write_number(out, -2.5e-8);
    corral_write_end_array(out);
    return CORRAL_DONE;
}

/* A value in an object without its key: the writer fails, and so does the call. */
CORRAL_FUNCTION(misuse, input, out) {
    corral_write_begin_object(out);
    corral_write_int(out, 1);
    corral_write_end_object(out);
    return CORRAL_DONE;
}

/* Returns CORRAL_FAILED without saying why. */
CORRAL_FUNCTION(silent_failure, input, out) { return CORRAL_FAILED; }

/* The config corral_init kept. */
CORRAL_FUNCTION(config, input, out) {
    corral_write_json(out, corral_config());
    return CORRAL_DONE;
}

/* A failed host call's code and message, as the plugin's own error. */
static corral_result refused(corral_reply reply) {
    return corral_fail(corral_format("host_%s", reply.code.ptr), reply.message.ptr);
}

/* {"key", "value"}: stores the value's bytes in the cache, reads them back, deletes them. */
CORRAL_FUNCTION(cache_round_trip, input, out) {
    corral_str key, value, stored;
    if (corral_json_get_string(input, "key", &key) != CORRAL_FIELD_OK ||
        corral_json_get_string(input, "value", &value) != CORRAL_FIELD_OK)
        return corral_fail("bad_input", "send {\"key\", \"value\"}");
    corral_reply reply = corral_cache_set(key.ptr, value.ptr, value.len, 60);
    if (!reply.ok) return refused(reply);
    if (!(reply = corral_cache_get(key.ptr, &stored)).ok) return refused(reply);
    bool deleted;
    if (!(reply = corral_cache_delete(key.ptr, &deleted)).ok) return refused(reply);
    corral_str gone;
    if (!(reply = corral_cache_get(key.ptr, &gone)).ok) return refused(reply);
    corral_write_begin_object(out);
    corral_write_key(out, "stored");
    corral_write_string_n(out, stored.ptr, stored.len);
    corral_write_key(out, "deleted");
    corral_write_bool(out, deleted);
    corral_write_key(out, "gone");
    corral_write_bool(out, gone.ptr == NULL);
    corral_write_end_object(out);
    return CORRAL_DONE;
}

/* Every other host method once, with what each answered. */
CORRAL_FUNCTION(host_tour, input, out) {
    corral_json rows, value, result;
    int64_t affected;
    corral_str text;
    corral_http_response response;
    const char *to[] = {"ada@example.com", "grace@example.com"};
    corral_reply reply;
    if (!(reply = corral_db_exec("insert into t values (?, ?)", "[1, \"one\"]", &affected)).ok) return refused(reply);
    if (!(reply = corral_db_query("select * from t where id = ?", "[1]", &rows)).ok) return refused(reply);
    if (!(reply = corral_http_request("POST", "https://example.com/x", "{\"accept\": \"text/plain\"}", "hi", 2,
                                      &response)).ok)
        return refused(reply);
    if (!(reply = corral_email_send(to, 2, "Hello", "Hi there", NULL)).ok) return refused(reply);
    if (!(reply = corral_host_log(CORRAL_LOG_WARN, "touring", "{\"step\": 5}")).ok) return refused(reply);
    if (!(reply = corral_config_get("colour", &value)).ok) return refused(reply);
    if (!(reply = corral_i18n_translate("hello", "[\"Ada\"]", &text)).ok) return refused(reply);
    if (!(reply = corral_plugin_call("other", "double", "{\"n\": 21}", &result)).ok) return refused(reply);
    if (!(reply = corral_events_publish("toured", "{\"ok\": true}")).ok) return refused(reply);
    corral_log(CORRAL_LOG_INFO, "toured the host");

    corral_write_begin_object(out);
    corral_write_key(out, "affected");
    corral_write_int(out, affected);
    corral_write_key(out, "rows");
    corral_write_json(out, rows);
    corral_write_key(out, "status");
    corral_write_int(out, response.status);
    corral_write_key(out, "headers");
    corral_write_json(out, response.headers);
    corral_write_key(out, "body");
    corral_write_string_n(out, response.body.ptr, response.body.len);
    corral_write_key(out, "colour");
    corral_write_json(out, value);
    corral_write_key(out, "text");
    corral_write_string(out, text.ptr);
    corral_write_key(out, "result");
    corral_write_json(out, result);
    corral_write_end_object(out);
    return CORRAL_DONE;
}

/* {"key"}: a config key the host refuses; the refusal becomes the call's error. */
CORRAL_FUNCTION(refused_config, input, out) {
    corral_str key;
    corral_field found = corral_json_get_string(input, "key", &key);
    if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "key", "a string");
    corral_json value;
    corral_reply reply = corral_config_get(key.ptr, &value);
    if (!reply.ok) return refused(reply);
    corral_write_json(out, value);
    return CORRAL_DONE;
}
