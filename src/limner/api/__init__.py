"""The gRPC edge: thin servicers, proto <-> domain conversion, status mapping, interceptors.

Named ``api`` (not ``grpc``) so it never shadows the grpc package.
"""
