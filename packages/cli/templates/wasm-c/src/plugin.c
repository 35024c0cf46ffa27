/* __NAME__: answers `greet` with the configured greeting, and fails with its own error code on bad input. */
#define CORRAL_IMPLEMENTATION
#include "corral.h"

/* {"name": "Ada"} -> {"message": "Hello, Ada!"}; __NAME__:missing_name without a name. */
CORRAL_FUNCTION(greet, input, out) {
    corral_str name;
    corral_field found = corral_json_get_string(input, "name", &name);
    if (found == CORRAL_FIELD_MISSING || (found == CORRAL_FIELD_OK && name.len == 0))
        return corral_fail("missing_name", "say who to greet: {\"name\": \"...\"}");
    if (found != CORRAL_FIELD_OK) return corral_fail_field(found, "name", "a string");

    corral_str greeting = {"Hello", 5};
    corral_json_get_string(corral_config(), "greeting", &greeting);
    corral_log(CORRAL_LOG_INFO, corral_format("greeted %s", name.ptr));

    corral_write_begin_object(out);
    corral_write_key(out, "message");
    corral_write_string(out, corral_format("%s, %s!", greeting.ptr, name.ptr));
    corral_write_end_object(out);
    return CORRAL_DONE;
}
