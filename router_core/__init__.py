"""OneKey's routing engine: a grpc.aio server that validates keys, resolves models, picks a
provider channel, forwards request bodies and meters what they cost (metadata only)."""
