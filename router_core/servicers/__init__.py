"""Thin gRPC servicers: protos in, domain calls, protos or a status out."""
