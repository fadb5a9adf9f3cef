"""Generated protobuf and gRPC stubs for the limner.v1 API. Do not edit: run scripts/gen."""
