"""gRPC over the services (`skilltree grpc`): the `skilltree.v1` Roadmaps and Progress services.

Another router, not another layer: each method authenticates like the REST API, asks for what
its REST twin's dependency asks for, and calls the same service function (docs/api-styles.md).
The code in `v1/` is generated from `proto/` by `make proto`; never edit it by hand.
"""
