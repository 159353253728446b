"""What a refused request's error code means: the usage event keeps the code the client got, not
its message (a message may quote the request), so the request page explains the code."""
from __future__ import annotations

MEANINGS = {
    "invalid_api_key": "No key was sent, or the key is not one OneKey knows.",
    "api_key_revoked": "The key was revoked; create a new one on the project's Keys page.",
    "api_key_expired": "The key passed its last day; extend it on its page or create a new one.",
    "insufficient_quota": "The project had no credit or free requests left for a priced model.",
    "key_spend_limit_reached": "The key had spent its monthly limit; raise it on the key's page.",
    "rate_limit_exceeded": "Too many requests per minute for this key or project; the client should wait and retry.",
    "model_not_found": "No model by that id in the catalog; see the Models page for the ids.",
    "model_not_available": "The model exists but this OneKey has no channel that serves it.",
    "model_retired": "The model was retired by its provider.",
    "invalid_request": "The request body was not one the API accepts.",
    "invalid_type": "A field of the request had the wrong type.",
    "invalid_number": "A number in the request was out of range.",
    "invalid_encoding": "The request body was not valid UTF-8 JSON.",
    "missing_required_parameter": "A required field of the request was missing.",
    "unsupported_parameter": "The request used a field this model or route does not take.",
    "unsupported_value": "A field of the request had a value this model or route does not take.",
    "untranslatable_request": "The request used a feature that cannot be carried to this model's provider API.",
    "unsupported_endpoint": "This model does not answer on the route that was called.",
    "nesting_too_deep": "The request body was nested too deeply.",
    "unknown_url": "The URL called is not an API route.",
    "method_not_allowed": "That HTTP method is not used on this route.",
    "response_not_found": "No stored response by that id for this project.",
    "previous_response_not_found": "The previous_response_id named a response this project does not have.",
    "conversation_not_found": "The conversation named is not one OneKey can reach.",
    "provider_unavailable": "The provider failed or was unreachable on every channel OneKey tried.",
    "upstream_error": "The provider answered with an error.",
    "bad_upstream_response": "The provider's answer could not be read.",
    "channel_gone": "The channel serving this model was removed while the request waited.",
    "server_overloaded": "OneKey was too busy to take the request; the client should retry.",
    "client_closed": "The client disconnected before the answer was complete (billed for what was produced).",
    "internal_error": "OneKey failed; the operator's logs have the request id.",
}


def meaning(code: str) -> str:
    """A sentence for a code, or '' for one this app does not know."""
    return MEANINGS.get(code, "")
