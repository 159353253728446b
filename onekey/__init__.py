"""OneKey's gRPC contract: generated stubs in onekey.v1."""
