"""OpenAPI post-processing: the error answers every operation can give, so clients (and
schemathesis) know them from the schema."""

ERROR = {
    "type": "object",
    "description": "`detail` for request-wide errors; otherwise a list of messages per field.",
    "additionalProperties": True,
    "properties": {"detail": {"type": "string"}},
}

_DESCRIPTIONS = {
    "400": "Invalid request: messages per field.",
    "401": "No valid token or session.",
    "403": "Your role does not allow this.",
    "404": "Not found (or a page past the end).",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflict: the draft changed or is not in a state that allows this.",
    "415": "Unsupported media type.",
    "429": "Too many generation requests; retry after the Retry-After header's seconds.",
}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Error", ERROR)
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            secured = path.startswith("/api/v1/") and path != "/api/v1/schema/"
            codes = ["400", "405", "406"]
            if secured:
                codes += ["401", "403"]
            if "{" in path or method == "get":
                codes.append("404")  # an object, or a page number past the end
            if method == "post":
                codes += ["409", "415"]
            if method == "post" and path == "/api/v1/jobs/":
                codes.append("429")
            for code in codes:
                responses.setdefault(code, {
                    "description": _DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": ref}},
                })
    return result
